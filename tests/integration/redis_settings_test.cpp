// The redis provider's settings as users meet them: declared to the host, which refuses unknown
// keys with a did-you-mean and wrong values with where they were set; what only the provider
// can check (the uri, and how it combines with the separate fields) named as clearly; never a
// password in a message; and the documentation listing exactly the declared keys.
#include "redis_support.h"

#include <athomic/sdk/provider.h>

#include <dlfcn.h>

#include <fstream>

namespace athomic::test {
namespace {

using testing::HasSubstr;
using testing::Not;

// What EventBus::create says about @p s, or "" when it builds the bus.
std::string create_error(const EventsSettings& s) {
  try {
    EventBus::create(s);
  } catch (const EventBusError& e) {
    return e.what();
  }
  return "";
}

// The settings a file named redis.toml gives, with @p variables as NALA_ overrides.
EventsSettings from_file(const std::string& toml,
                         const std::map<std::string, std::string>& variables = {}) {
  return Settings::from_toml(toml, "redis.toml", "development", variables).events();
}

constexpr const char* kFile = R"([default.events.provider]
backend = "redis"
keepalive_interval = 10
[default.events.provider.provider]
key_prefix = "app_events"
[default.events.provider.provider.provider]
backend = "redis"
uri = "redis://app:hunter2@127.0.0.1:6379/0"
)";

TEST(RedisSettings, AnUnknownKeyGetsADidYouMeanWithItsFullPath) {
  auto s = redis_settings("redis://127.0.0.1:6379/0");
  s.provider_config["provider"]["provider"]["prot"] = 6380;
  EXPECT_THAT(create_error(s),
              HasSubstr("unknown setting events.provider.provider.provider.prot. Did you mean "
                        "'events.provider.provider.provider.port'?"));
  s = redis_settings("redis://127.0.0.1:6379/0", {{"keepalive_intreval", 5}});
  EXPECT_THAT(create_error(s), HasSubstr("unknown setting events.provider.keepalive_intreval. Did "
                                         "you mean 'events.provider.keepalive_interval'?"));
  s = redis_settings("redis://127.0.0.1:6379/0");
  s.provider_config["provider"]["key_prefx"] = "x";
  EXPECT_THAT(create_error(s), HasSubstr("Did you mean 'events.provider.provider.key_prefix'?"));
}

TEST(RedisSettings, AWrongValueNamesTheFileAndLine) {
  const std::string toml = std::string(kFile) + "port = \"6380\"\n";
  const std::string error = create_error(from_file(toml));
  EXPECT_THAT(error, HasSubstr("redis.toml:9: events.provider.provider.provider.port = \"6380\" "
                               "is invalid: expected an integer from 1 to 65535"));
  EXPECT_THAT(error, Not(HasSubstr("hunter2")));
}

TEST(RedisSettings, AWrongValueNamesTheVariableThatSetIt) {
  const std::string error =
      create_error(from_file(kFile, {{"NALA_EVENTS__PROVIDER__KEEPALIVE_INTERVAL", "-1"}}));
  EXPECT_THAT(error, HasSubstr("environment variable NALA_EVENTS__PROVIDER__KEEPALIVE_INTERVAL: "
                               "events.provider.keepalive_interval = -1 is invalid: expected "
                               "seconds from 0 to 3600"));
  EXPECT_THAT(
      create_error(
          from_file(kFile, {{"NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__BACKEND", "memcached"}})),
      HasSubstr("environment variable NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__BACKEND: "
                "events.provider.provider.provider.backend = \"memcached\" is invalid: expected "
                "\"redis\""));
}

TEST(RedisSettings, APasswordNeverAppearsInAMessage) {
  const std::vector<std::string> errors = {
      // the password key with a value of the wrong type
      create_error(from_file(std::string(kFile) + "password = 2222333\n")),
      // ... misspelt
      create_error(from_file(std::string(kFile) + "pasword = \"hunter2\"\n")),
      // a uri the provider cannot parse, with a password in it
      create_error(redis_settings("http://app:hunter2@127.0.0.1:6379/0")),
      create_error(redis_settings("redis://app:hunter2@127.0.0.1:notaport/0")),
      create_error(redis_settings("redis://hunter2@127.0.0.1:6379/x")),
      // a uri with credentials, and a password beside it
      create_error(
          from_file(kFile, {{"NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__PASSWORD", "2222333"}})),
  };
  for (const auto& e : errors) {
    EXPECT_NE(e, "");
    EXPECT_THAT(e, Not(HasSubstr("hunter2")));
    EXPECT_THAT(e, Not(HasSubstr("2222333")));
  }
  EXPECT_THAT(errors[0], HasSubstr("events.provider.provider.provider.password = \"***\" is "
                                   "invalid: expected a string"));
  EXPECT_THAT(errors[2], HasSubstr("events.provider.provider.provider.uri = "
                                   "\"http://app:***@127.0.0.1:6379/0\" is invalid: expected "
                                   "redis://[user[:password]@]host[:port][/db]"));
  EXPECT_THAT(errors[3], HasSubstr("the port in the uri must be 1 to 65535, got 'notaport'"));
  EXPECT_THAT(errors[4], HasSubstr("\"redis://***@127.0.0.1:6379/x\""));
}

TEST(RedisSettings, TheUriAndTheSeparateFieldsMayNotContradictEachOther) {
  auto s = redis_settings("redis://127.0.0.1:6379/0");
  s.provider_config["provider"]["provider"]["host"] = "elsewhere";
  EXPECT_THAT(create_error(s),
              HasSubstr("events.provider.provider.provider.host is set, and so is "
                        "events.provider.provider.provider.uri (\"redis://127.0.0.1:6379/0\"), "
                        "which names the host already: set it in one place"));
  s = redis_settings("redis://127.0.0.1:6379/0");
  s.provider_config["provider"]["provider"]["port"] = 6380;
  EXPECT_THAT(create_error(s), HasSubstr("names the port already"));
  s = redis_settings("redis://127.0.0.1/0");  // no port in the uri: the field completes it
  s.provider_config["provider"]["provider"]["port"] = 6380;
  EXPECT_EQ(create_error(s), "");
  s = redis_settings("redis://127.0.0.1:6379/0");
  s.provider_config["provider"]["provider"]["user"] = "app";
  EXPECT_THAT(create_error(s), HasSubstr("events.provider.provider.provider.user = \"app\" has "
                                         "no password: AUTH needs both"));
  s = redis_settings("");
  s.provider_config["provider"]["provider"].erase("uri");
  s.provider_config["provider"]["key_prefix"] = "";
  EXPECT_THAT(create_error(s), HasSubstr("events.provider.provider.key_prefix = \"\" is invalid"));
}

// A redis settings table whose connection is @p connection (no uri unless it has one).
EventsSettings with_connection(const json& connection) {
  auto s = redis_settings("");
  auto& c = s.provider_config["provider"]["provider"];
  c.erase("uri");
  c.update(connection);
  return s;
}

TEST(RedisSettings, SentinelSettingsThatCannotWorkAreNamed) {
  const std::string at = "events.provider.provider.provider.";
  EXPECT_THAT(create_error(with_connection({{"sentinels", "127.0.0.1:26379"}})),
              HasSubstr(at + "sentinels is set but " + at +
                        "master_name is not: Redis Sentinel needs both"));
  EXPECT_THAT(create_error(with_connection({{"master_name", "mymaster"}})),
              HasSubstr(at + "master_name is set but " + at + "sentinels is not"));
  EXPECT_THAT(
      create_error(with_connection(
          {{"sentinels", "127.0.0.1:26379"}, {"master_name", "m"}, {"host", "cache"}})),
      HasSubstr(at + "host is set, and so is " + at +
                "sentinels: with sentinels, the sentinels name the master's host and port"));
  EXPECT_THAT(create_error(with_connection({{"sentinels", "a:26379,,b"}, {"master_name", "m"}})),
              HasSubstr(at + "sentinels = \"a:26379,,b\" is invalid: address 2 of the list is "
                             "empty (expected host[:port], comma-separated)"));
  EXPECT_THAT(create_error(with_connection({{"sentinels", "a:99999"}, {"master_name", "m"}})),
              HasSubstr("the port in the list of sentinels must be 1 to 65535, got '99999'"));
  EXPECT_THAT(create_error(with_connection({{"sentinels", "a"}, {"master_name", ""}})),
              HasSubstr(at + "master_name = \"\" is invalid"));
  EXPECT_THAT(create_error(with_connection(
                  {{"uri", "redis://cache:6379/0"}, {"sentinels", "a"}, {"master_name", "m"}})),
              HasSubstr("which names one server: with sentinels, the sentinels name the master"));
  EXPECT_THAT(
      create_error(with_connection({{"uri", "redis+sentinel://a,b/m"}, {"master_name", "other"}})),
      HasSubstr("names the sentinels and the master already: set them in one place"));
  EXPECT_THAT(create_error(with_connection({{"uri", "redis+sentinel://a,b"}})),
              HasSubstr("the uri names no master"));
  EXPECT_THAT(create_error(with_connection({{"host", "cache"}, {"sentinel_password", "s3cret"}})),
              HasSubstr(at + "sentinel_password is set, but no sentinels are"));
  const std::string no_password = create_error(
      with_connection({{"uri", "redis+sentinel://:hunter2@a/m"}, {"sentinel_user", "watcher"}}));
  EXPECT_THAT(no_password, HasSubstr(at + "sentinel_user = \"watcher\" has no password"));
  EXPECT_THAT(no_password, Not(HasSubstr("hunter2")));
  // The uri form and the separate keys are both accepted.
  EXPECT_EQ(create_error(with_connection(
                {{"uri", "redis+sentinel://:pw@a:1,[::1]:2,c/m/3"}, {"sentinel_password", "spw"}})),
            "");
  EXPECT_EQ(create_error(with_connection(
                {{"sentinels", "a, b:26380"}, {"master_name", "m"}, {"db", 2}, {"password", "x"}})),
            "");
}

TEST(RedisSettings, ASentinelPasswordIsSeparateFromTheMasters) {
  // The sentinel wants one password, the master another.
  RedisServer master({"--requirepass", "master-pw"});
  SentinelServer sentinel("m", master.port(), 1, 5000, 10000,
                          {"requirepass sentinel-pw", "sentinel auth-pass m master-pw"});
  auto s = with_connection({{"sentinels", "127.0.0.1:" + std::to_string(sentinel.port())},
                            {"master_name", "m"},
                            {"password", "master-pw"}});
  const std::string no_sentinel_password = start_error(s);
  EXPECT_THAT(no_sentinel_password, HasSubstr("authentication failed at sentinel 127.0.0.1:" +
                                              std::to_string(sentinel.port()) + ": NOAUTH"));
  EXPECT_THAT(no_sentinel_password, HasSubstr("sentinel_password"));
  s.provider_config["provider"]["provider"]["sentinel_password"] = "wrong";
  const std::string wrong = start_error(s);
  EXPECT_THAT(wrong, HasSubstr("authentication failed at sentinel 127.0.0.1:" +
                               std::to_string(sentinel.port())));
  EXPECT_THAT(wrong, Not(HasSubstr("master-pw")));
  s.provider_config["provider"]["provider"]["sentinel_password"] = "sentinel-pw";
  auto bus = started(s);
  Completion c = bus->publish("behind.two.passwords", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
}

TEST(RedisSettings, APasswordBesideAUriWithoutCredentialsIsUsed) {
  // The uri in a file, its password from a variable: a common way to keep secrets out of files.
  // Only `app` may connect, so the fields must have been used.
  RedisServer server(
      {"--user", "default", "off", "--user", "app", "on", ">app-pw", "~*", "&*", "+@all"});
  EXPECT_THAT(start_error(redis_settings(server.uri())), HasSubstr("authentication failed"));
  auto s = redis_settings(server.uri());
  s.provider_config["provider"]["provider"]["user"] = "app";
  s.provider_config["provider"]["provider"]["password"] = "app-pw";
  auto bus = started(s);
  Completion c = bus->publish("with.password", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
}

TEST(RedisSettings, DefaultsReachTheProvider) {
  RedisServer server;
  EventsSettings s = local_settings();
  s.backend = "redis";
  s.provider_config = {
      {"backend", "redis"},
      {"provider", {{"provider", {{"port", server.port()}, {"host", "127.0.0.1"}}}}}};
  auto bus = started(s);
  RawClient watcher(server.port());
  watcher.command({"SUBSCRIBE", "events:by.default"});  // key_prefix "events", separator ":"
  ASSERT_TRUE(bus->publish("by.default", {}).wait_for(kGenerous));
  EXPECT_EQ(watcher.next_message(), "{}");
}

// The rows of the redis table in docs/CONFIGURATION.md: key -> the rest of the row.
std::map<std::string, std::string> documented_keys() {
  std::ifstream in(ATHOMIC_SOURCE_DIR "/docs/CONFIGURATION.md");
  std::map<std::string, std::string> rows;
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) {
      in_section = line.find("`backend = \"redis\"`") != std::string::npos;
    }
    if (in_section && line.starts_with("| `events.provider.")) {
      const std::size_t end = line.find('`', 3);
      rows[line.substr(3, end - 3)] = line.substr(end + 1);
    }
  }
  return rows;
}

TEST(RedisSettings, TheDocumentationListsEveryDeclaredKey) {
  void* lib = ::dlopen(ATHOMIC_REDIS_PLUGIN, RTLD_NOW | RTLD_LOCAL);  // never closed
  ASSERT_TRUE(lib) << ::dlerror();
  auto entry =
      reinterpret_cast<athomic_provider_entry_fn>(::dlsym(lib, ATHOMIC_PROVIDER_ENTRY_SYMBOL));
  ASSERT_TRUE(entry);
  athomic_host_api host{};  // the entry reads no more than the versions
  host.struct_size = sizeof host;
  host.abi_major = ATHOMIC_ABI_VERSION_MAJOR;
  host.abi_minor = ATHOMIC_ABI_VERSION_MINOR;
  const athomic_provider_info* info = entry(&host);
  ASSERT_TRUE(info && info->settings);
  std::map<std::string, std::string> documented = documented_keys();
  ASSERT_FALSE(documented.empty()) << "no redis table found in docs/CONFIGURATION.md";
  for (auto d = info->settings; *d; ++d) {
    const std::string key = std::string("events.provider.") + (*d)->path;
    auto it = documented.find(key);
    if (it == documented.end()) {
      ADD_FAILURE() << key << " is declared but not documented";
      continue;
    }
    if ((*d)->flags & ATHOMIC_SETTING_SECRET) {
      EXPECT_THAT(it->second, HasSubstr("secret")) << key << " is not documented as secret";
    }
    documented.erase(it);
  }
  for (const auto& [key, row] : documented) ADD_FAILURE() << key << " is documented, not declared";
}

}  // namespace
}  // namespace athomic::test
