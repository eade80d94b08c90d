// Typed events through the real `local` plugin, in both dispatch modes: C++ values published
// with to_json, handlers taking the type with from_json, events that carry their own name, and
// payloads that do not convert (a handler failure whose log line names the field).
#include "log_capture.h"
#include "test_support.h"

#include <gmock/gmock.h>

#include <map>
#include <optional>
#include <vector>

// A named namespace, so that the demangled type names the log lines show are predictable.
namespace shop {

struct Address {
  std::string street;
  std::string city;
};
ATHOMIC_EVENT_FIELDS(Address, street, city)

struct UserCreated {
  static constexpr std::string_view event_name = "user.created";
  std::string id;
  int age = 0;
};
ATHOMIC_EVENT_FIELDS(UserCreated, id, age)

struct Customer {
  std::string name;
  Address address;
  std::vector<Address> previous;
  std::map<std::string, int> scores;
};
ATHOMIC_EVENT_FIELDS(Customer, name, address, previous, scores)

// Converted by nlohmann's own macro: works, but its errors do not say which field failed.
struct Legacy {
  int level = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Legacy, level)

// Converts to a JSON array: not a payload.
struct Point {
  int x = 0;
  int y = 0;
};
inline void to_json(nlohmann::json& j, const Point& p) { j = nlohmann::json::array({p.x, p.y}); }

// Its to_json fails the way nlohmann fails: a raw nlohmann exception.
struct Broken {};
inline void to_json(nlohmann::json& j, const Broken&) {
  j = nlohmann::json::array();
  j["key"] = 1;  // operator[] with a string on an array: type_error.305
}

struct NoConversions {};

}  // namespace shop

namespace athomic::test {
namespace {

using testing::HasSubstr;
using testing::Not;

static_assert(JsonWritable<shop::UserCreated>);
static_assert(JsonReadable<shop::UserCreated>);
static_assert(NamedEvent<shop::UserCreated>);
static_assert(!NamedEvent<shop::Customer>);
static_assert(!JsonWritable<shop::NoConversions>);
static_assert(!JsonReadable<shop::NoConversions>);

class TypedEvents : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus = started(local_settings(GetParam()));
};

TEST_P(TypedEvents, AValueIsPublishedWithToJsonAndReceivedWithFromJson) {
  std::mutex m;
  std::vector<std::string> seen;
  bus->subscribe<shop::UserCreated>(
      "user.created", [&](const shop::UserCreated& u, const Event& e) {
        std::lock_guard lock(m);
        seen.push_back(std::string(e.name()) + " " + u.id + " " + std::to_string(u.age));
      });
  bus->subscribe<shop::UserCreated>("user.created", [&](const shop::UserCreated& u) {
    std::lock_guard lock(m);
    seen.push_back("payload only " + u.id);
  });
  // The payload on the bus is the JSON object to_json wrote: untyped handlers see it.
  bus->subscribe("user.created", [&](const nlohmann::json& payload) {
    std::lock_guard lock(m);
    seen.push_back(payload.dump());
  });
  auto done = bus->publish("user.created", shop::UserCreated{"u-1", 36});
  done.wait();
  EXPECT_EQ(done.failed_handlers(), 0u);
  EXPECT_THAT(seen, testing::UnorderedElementsAre("user.created u-1 36", "payload only u-1",
                                                  R"({"age":36,"id":"u-1"})"));
}

TEST_P(TypedEvents, AnEventTypeCarriesItsOwnName) {
  Counter got;
  std::string id;
  bus->subscribe<shop::UserCreated>([&](const shop::UserCreated& u, const Event& e) {
    EXPECT_EQ(e.name(), "user.created");
    id = u.id;
    got.add();
  });
  EXPECT_EQ(bus->handler_count("user.created"), 1u);
  bus->publish(shop::UserCreated{"u-2", 7}).wait();
  EXPECT_EQ(got.value(), 1);
  EXPECT_EQ(id, "u-2");
}

TEST_P(TypedEvents, NestedFieldsContainersAndNlohmannsOwnMacroConvert) {
  Counter got;
  shop::Customer seen;
  bus->subscribe<shop::Customer>("customer.moved", [&](const shop::Customer& c) {
    seen = c;
    got.add();
  });
  int level = -1;
  bus->subscribe<shop::Legacy>("legacy.event", [&](const shop::Legacy& l) {
    level = l.level;
    got.add();
  });
  bus->publish("customer.moved", shop::Customer{"Ada",
                                                {"1 Main St", "Springfield"},
                                                {{"2 Old Rd", "Shelbyville"}},
                                                {{"gold", 3}}})
      .wait();
  bus->publish("legacy.event", shop::Legacy{4}).wait();
  EXPECT_EQ(got.value(), 2);
  EXPECT_EQ(seen.address.city, "Springfield");
  ASSERT_EQ(seen.previous.size(), 1u);
  EXPECT_EQ(seen.previous[0].street, "2 Old Rd");
  EXPECT_EQ(seen.scores.at("gold"), 3);
  EXPECT_EQ(level, 4);
}

TEST_P(TypedEvents, AValueThatIsNotAJsonObjectIsRefusedNamingItsType) {
  bus->subscribe("shape.drawn", [](const Event&) { ADD_FAILURE() << "nothing was published"; });
  try {
    bus->publish("shape.drawn", shop::Point{1, 2});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("publish('shape.drawn'): shop::Point converts to a JSON "
                                    "array; a payload must be a JSON object"));
  }
  try {
    bus->publish("shape.drawn", std::vector<int>{1, 2});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("std::vector<int"));
    EXPECT_THAT(e.what(), HasSubstr("converts to a JSON array"));
  }
}

TEST_P(TypedEvents, AToJsonThatThrowsGivesTheBussErrorNotANlohmannException) {
  try {
    bus->publish("shape.drawn", shop::Broken{});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("publish('shape.drawn'): converting shop::Broken to JSON "
                                    "failed: [json.exception.type_error.305]"));
  } catch (const std::exception& e) {
    FAIL() << "not the bus's error: " << e.what();
  }
}

TEST_P(TypedEvents, APayloadThatDoesNotConvertIsAHandlerFailureNamingTheField) {
  LogCapture log("athomic.events");
  Counter others;
  bus->subscribe<shop::UserCreated>([](const shop::UserCreated&) {
    ADD_FAILURE() << "called with a payload that does not convert";
  });
  bus->subscribe("user.created", [&](const Event&) { others.add(); });
  auto done = bus->publish("user.created", {{"id", "u-3"}, {"age", "thirty"}});
  done.wait();
  EXPECT_EQ(done.failed_handlers(), 1u);
  EXPECT_EQ(others.value(), 1);
  EXPECT_EQ(bus->stats().handler_failures, 1u);
  EXPECT_THAT(log.text(),
              HasSubstr("'user.created' payload does not convert to shop::UserCreated at /age: "
                        "[json.exception.type_error.302] type must be number, but is string"));
}

TEST_P(TypedEvents, AMissingFieldIsNamed) {
  LogCapture log("athomic.events");
  bus->subscribe<shop::UserCreated>([](const shop::UserCreated&) {});
  bus->publish("user.created", {{"id", "u-4"}}).wait();
  EXPECT_EQ(bus->stats().handler_failures, 1u);
  EXPECT_THAT(log.text(), HasSubstr("shop::UserCreated at /age: [json.exception.out_of_range.403] "
                                    "key 'age' not found"));
}

TEST_P(TypedEvents, NestedFieldsAreNamedByTheirFullPointer) {
  LogCapture log("athomic.events");
  bus->subscribe<shop::Customer>("customer.moved", [](const shop::Customer&) {});
  const nlohmann::json good_address = {{"street", "s"}, {"city", "c"}};
  const nlohmann::json good = {{"name", "Ada"},
                               {"address", good_address},
                               {"previous", nlohmann::json::array({good_address})},
                               {"scores", nlohmann::json::object()}};
  nlohmann::json bad_city = good;
  bad_city["address"]["city"] = 5;
  nlohmann::json bad_element = good;
  bad_element["previous"] =
      nlohmann::json::array({good_address, {{"street", nullptr}, {"city", "c"}}});
  nlohmann::json bad_score = good;
  bad_score["scores"] = {{"gold", 1}, {"a/b", "x"}};
  nlohmann::json not_an_object = good;
  not_an_object["previous"] = nlohmann::json::array({good_address, 7});
  for (const auto& payload : {bad_city, bad_element, bad_score, not_an_object}) {
    bus->publish("customer.moved", payload).wait();
  }
  EXPECT_EQ(bus->stats().handler_failures, 4u);
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("shop::Customer at /address/city: [json.exception.type_error.302]"));
  EXPECT_THAT(text, HasSubstr("shop::Customer at /previous/1/street: "
                              "[json.exception.type_error.302] type must be string, but is null"));
  // A JSON pointer escapes '/' in a key as "~1".
  EXPECT_THAT(text, HasSubstr("shop::Customer at /scores/a~1b: [json.exception.type_error.302]"));
  EXPECT_THAT(text, HasSubstr("shop::Customer at /previous/1: [json.exception.type_error.304]"));
}

TEST_P(TypedEvents, ATypeWithItsOwnFromJsonGetsNlohmannsMessageAndAnUnknownField) {
  LogCapture log("athomic.events");
  bus->subscribe<shop::Legacy>("legacy.event", [](const shop::Legacy&) {});
  bus->publish("legacy.event", {{"level", "high"}}).wait();
  EXPECT_EQ(bus->stats().handler_failures, 1u);
  const std::string text = log.text();
  EXPECT_THAT(text,
              HasSubstr("'legacy.event' payload does not convert to shop::Legacy (field "
                        "unknown: its from_json does not say; ATHOMIC_EVENT_FIELDS does): "
                        "[json.exception.type_error.302] type must be number, but is string"));
  EXPECT_THAT(text, Not(HasSubstr(" at /")));
}

TEST_P(TypedEvents, PayloadAsConvertsInsideAnUntypedHandler) {
  Counter got;
  std::string error;
  bus->subscribe("user.created", [&](const Event& e) {
    EXPECT_EQ(payload_as<shop::UserCreated>(e).age, 1);
    try {
      payload_as<shop::Customer>(e);
    } catch (const PayloadError& x) {
      EXPECT_EQ(x.type(), "shop::Customer");
      EXPECT_EQ(x.field(), "/name");
      error = x.what();
    }
    got.add();
  });
  bus->publish("user.created", shop::UserCreated{"u-5", 1}).wait();
  EXPECT_EQ(got.value(), 1);
  EXPECT_THAT(error, HasSubstr("key 'name' not found"));
}

TEST_P(TypedEvents, TheMacrosFromJsonThrowsANlohmannExceptionCarryingThePointer) {
  const nlohmann::json j = {{"id", "u"}, {"age", "x"}};
  try {
    (void)j.get<shop::UserCreated>();
    FAIL() << "expected an exception";
  } catch (const nlohmann::json::exception& e) {  // what callers of get<T>() already catch
    const auto* located = dynamic_cast<const FieldError*>(&e);
    ASSERT_NE(located, nullptr);
    EXPECT_EQ(located->pointer().to_string(), "/age");
    EXPECT_EQ(e.id, 302);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, TypedEvents,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
