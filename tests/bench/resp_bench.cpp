// The redis provider's RESP reader (plugins/redis/resp.cpp) against hiredis's redisReader on the
// provider's traffic, in one run: Pub/Sub "message" arrays with ~180-byte bodies (what the
// subscribing connection reads) and ":N" integer replies (what the publishing one reads), fed
// in chunks as read() returns them. Each side does what the provider needs per message: find
// the event name and the body and hand both on.
//
//   athomic_resp_bench --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// Exits 1 when a reader did not hand on every message (the figures would compare unequal work).
//
// hiredis is given every advantage it offers: reply functions that allocate nothing (the
// default ones build a redisReply tree: four allocations per message; measured too, as
// "HiredisDefault"). Its reader copies each chunk into its own buffer (redisReaderFeed) and
// compacts that buffer as it goes; the views it passes are valid only until then, so the body is
// handed on from inside createString and the channel copied, as the provider would have to.
#include "resp.h"

#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace athomic::redis;

constexpr std::string_view kPrefix = "bench:";  // key_prefix + separator

// What the provider hands the host for each message.
struct Delivery {
  std::size_t messages = 0;
  std::size_t bytes = 0;
  int64_t integers = 0;
  void deliver(std::string_view event, std::string_view body) {
    ++messages;
    bytes += event.size() + body.size();
    benchmark::DoNotOptimize(body.data());
  }
};

std::string envelope(int n) {
  char out[256];
  const int len =
      std::snprintf(out, sizeof out,
                    R"({"n":%d,"pad":"%064d","ts":123456789012345,)"
                    R"("_nala_context":{"tenant_id":"bench","trace_id":"bench-trace"}})",
                    n, n);
  return std::string(out, static_cast<std::size_t>(len));
}

// About 1 MiB of what the subscribing connection receives.
const std::string& message_stream() {
  static const std::string s = [] {
    std::string out;
    while (out.size() < (std::size_t{1} << 20)) {
      const std::string body = envelope(static_cast<int>(out.size()));
      resp::append_header(out, '*', 3);
      for (std::string_view part :
           {std::string_view("message"), std::string_view("bench:bench.event"),
            std::string_view(body)}) {
        resp::append_header(out, '$', part.size());
        out.append(part).append("\r\n");
      }
    }
    return out;
  }();
  return s;
}

std::size_t messages_in_stream() {
  static const std::size_t n = [] {
    std::size_t count = 0, pos = 0;
    const std::string& s = message_stream();
    while ((pos = s.find("$7\r\nmessage\r\n", pos)) != std::string::npos) ++count, ++pos;
    return count;
  }();
  return n;
}

// About 256 KiB of PUBLISH answers (receiver counts 0..9).
const std::string& integer_stream() {
  static const std::string s = [] {
    std::string out;
    for (int i = 0; out.size() < (std::size_t{256} << 10); ++i) {
      out.push_back(':');
      out.push_back(static_cast<char>('0' + i % 10));
      out.append("\r\n");
    }
    return out;
  }();
  return s;
}

bool work_check_failed = false;  // makes the run exit 1

// Every reader must hand on every message of every pass, or the figures compare unequal work.
void check(benchmark::State& state, const std::string& stream, const Delivery& d) {
  const std::size_t expected = &stream == &message_stream() ? messages_in_stream() : 0;
  if (d.messages != expected * static_cast<std::size_t>(state.iterations())) {
    state.SkipWithError("a reader missed messages");
    work_check_failed = true;
  }
  state.counters["msgs/pass"] =
      static_cast<double>(d.messages) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(expected ? expected : stream.size() / 4));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}

// ---- athomic: read() into the connection's buffer, parse in place ----

class InPlace {
 public:
  // As Connection::read: compact, then receive into the free space (memcpy stands for read()).
  void receive(std::string_view chunk) {
    if (begin_ == end_) begin_ = end_ = 0;
    if (buf_.size() - end_ < chunk.size()) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (buf_.size() - end_ < chunk.size()) buf_.resize(buf_.size() * 2 + chunk.size());
    }
    std::memcpy(buf_.data() + end_, chunk.data(), chunk.size());
    end_ += chunk.size();
  }
  template <typename F>
  void each_reply(F&& f) {
    resp::Reply r;
    std::string error;
    for (;;) {
      std::size_t used = 0;
      const std::string_view in(buf_.data() + begin_, end_ - begin_);
      if (resp::parse_reply(in, r, used, error) != resp::Parse::complete) return;
      f(r);
      begin_ += used;
    }
  }

 private:
  std::vector<char> buf_ = std::vector<char>(std::size_t{256} << 10);
  std::size_t begin_ = 0, end_ = 0;
};

void athomic_messages(benchmark::State& state, const std::string& stream) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  InPlace conn;
  Delivery d;
  for (auto _ : state) {
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      conn.receive(std::string_view(stream).substr(at, chunk));
      conn.each_reply([&](const resp::Reply& r) {
        if (r.is_array) {
          if (r.count >= 3 && r.items[0].text == "message") {
            d.deliver(r.items[1].text.substr(kPrefix.size()), r.items[2].text);
          }
        } else {
          d.integers += r.value.integer;
        }
      });
    }
  }
  check(state, stream, d);
}

// ---- hiredis: read() into a buffer, redisReaderFeed, redisReaderGetReply ----

struct HiredisSink {
  Delivery delivery;
  bool is_message = false;
  std::string channel;  // copied: the reader may move its buffer before the body comes
};

char sentinel;  // every object the no-allocation functions "create"

void* create_string(const redisReadTask* task, char* s, std::size_t len) {
  auto* sink = static_cast<HiredisSink*>(task->privdata);
  if (task->parent) {
    if (task->idx == 0) {
      sink->is_message = std::string_view(s, len) == "message";
    } else if (task->idx == 1) {
      sink->channel.assign(s, len);
    } else if (task->idx == 2 && sink->is_message) {
      sink->delivery.deliver(std::string_view(sink->channel).substr(kPrefix.size()),
                             std::string_view(s, len));
    }
  }
  return &sentinel;
}
void* create_array(const redisReadTask*, int) { return &sentinel; }
void* create_integer(const redisReadTask* task, long long v) {
  static_cast<HiredisSink*>(task->privdata)->delivery.integers += v;
  return &sentinel;
}
void* create_nil(const redisReadTask*) { return &sentinel; }
void free_object(void*) {}

redisReplyObjectFunctions no_allocation{create_string, create_array, create_integer, create_nil,
                                        free_object};

void hiredis_messages(benchmark::State& state, const std::string& stream, bool default_functions) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  HiredisSink sink;
  redisReader* reader =
      default_functions ? redisReaderCreate() : redisReaderCreateWithFunctions(&no_allocation);
  reader->privdata = &sink;
  std::vector<char> read_buffer(chunk);
  for (auto _ : state) {
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      const std::size_t n = std::min(chunk, stream.size() - at);
      std::memcpy(read_buffer.data(), stream.data() + at, n);  // read()
      redisReaderFeed(reader, read_buffer.data(), n);
      for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
          state.SkipWithError(reader->errstr);
          return;
        }
        if (!reply) break;
        if (default_functions) {
          auto* r = static_cast<redisReply*>(reply);
          if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
              std::string_view(r->element[0]->str, r->element[0]->len) == "message") {
            sink.delivery.deliver(
                std::string_view(r->element[1]->str, r->element[1]->len).substr(kPrefix.size()),
                std::string_view(r->element[2]->str, r->element[2]->len));
          } else if (r->type == REDIS_REPLY_INTEGER) {
            sink.delivery.integers += r->integer;
          }
          freeReplyObject(r);
        }
      }
    }
  }
  redisReaderFree(reader);
  check(state, stream, sink.delivery);
}

void BM_Messages_Athomic(benchmark::State& s) { athomic_messages(s, message_stream()); }
void BM_Messages_Hiredis(benchmark::State& s) { hiredis_messages(s, message_stream(), false); }
void BM_Messages_HiredisDefault(benchmark::State& s) {
  hiredis_messages(s, message_stream(), true);
}
void BM_PublishReplies_Athomic(benchmark::State& s) { athomic_messages(s, integer_stream()); }
void BM_PublishReplies_Hiredis(benchmark::State& s) {
  hiredis_messages(s, integer_stream(), false);
}
void BM_PublishReplies_HiredisDefault(benchmark::State& s) {
  hiredis_messages(s, integer_stream(), true);
}

// Chunk sizes: what one read() returns; 16 KiB is hiredis's own read size.
#define CHUNKS Arg(4096)->Arg(16384)->Arg(65536)
BENCHMARK(BM_Messages_Athomic)->CHUNKS;
BENCHMARK(BM_Messages_Hiredis)->CHUNKS;
BENCHMARK(BM_Messages_HiredisDefault)->CHUNKS;
BENCHMARK(BM_PublishReplies_Athomic)->CHUNKS;
BENCHMARK(BM_PublishReplies_Hiredis)->CHUNKS;
BENCHMARK(BM_PublishReplies_HiredisDefault)->CHUNKS;

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return work_check_failed ? 1 : 0;
}
