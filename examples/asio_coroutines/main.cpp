// An Asio service on athomic, with C++20 coroutines. Each order is a coroutine that publishes
// "order.placed" inside its request's execution context and co_awaits the publish; the audit
// handler runs on a strand of the same io_context — one call at a time, inside the publisher's
// context, so its log line carries the request's trace id.
//
//   athomic-asio-demo          3 orders, on the backend the settings choose (local by default)
//   athomic-asio-demo -n 10
#include <athomic/asio.hpp>  // first: it includes <utility> before Boost 1.74's Asio headers
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

namespace net = boost::asio;

namespace {

net::awaitable<void> place_order(athomic::EventBus& bus, int n, std::atomic<int>& placed) {
  auto log = athomic::get_logger("order_service");
  const athomic::ContextPtr request = athomic::ExecutionContext::Builder()
                                          .trace_id("trace-" + std::to_string(4711 + n))
                                          .tenant_id("acme")
                                          .request_id("req-" + std::to_string(n + 1))
                                          .build();
  // The current context is thread-local: scope it around the publish, never across a
  // co_await (the coroutine may resume on another thread, and other work runs on this one).
  athomic::Completion publish = [&] {
    athomic::ContextScope scope(request);
    return bus.publish("order.placed",
                       {{"order", "order-" + std::to_string(n)}, {"amount", 10 * (n + 1)}});
  }();

  // Suspends this coroutine, not the thread; resumes on this io_context once the bus is done
  // with the publish (in process: every handler has run, or for the strand's, been queued).
  boost::system::error_code ec;
  athomic::Completion done = co_await athomic::asio::async_wait(
      std::move(publish), net::redirect_error(net::use_awaitable, ec));

  athomic::ContextScope scope(request);  // for the log line; no co_await below
  if (ec) {
    log->error("order-{} was not delivered: {}", n, done.error());
    co_return;
  }
  log->info("order-{} placed", n);
  ++placed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic with Boost.Asio: coroutines co_await publishes, handlers run on a strand"};
  int count = 3;
  int timeout_s = 10;
  app.add_option("-n,--count", count, "orders to place")->check(CLI::PositiveNumber);
  app.add_option("--timeout", timeout_s, "seconds to wait for the audit")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    athomic::EventBus& bus = athomic::get_event_bus();
    auto log = athomic::get_logger("demo");
    net::io_context io;
    auto strand = net::make_strand(io);

    // Ends the run when every order is audited, or the deadline passes first.
    auto work = net::make_work_guard(io);
    net::steady_timer deadline(strand, std::chrono::seconds(timeout_s));
    deadline.async_wait([&](boost::system::error_code ec) {
      if (ec) return;  // cancelled: all audited
      log->error("timed out waiting for the audit of {} orders", count);
      io.stop();
    });

    int audited = 0;  // only touched on the strand
    athomic::asio::ExecutorSubscription audit =
        athomic::asio::subscribe(bus, "order.placed", strand, [&](const athomic::Event& e) {
          // On the strand, inside the publisher's context: the line carries its trace id.
          athomic::get_logger("audit_service")
              ->info("Auditing {} ({} EUR)", e.payload().value("order", "?"),
                     e.payload().value("amount", 0));
          if (++audited == count) {
            deadline.cancel();
            work.reset();
          }
        });

    std::atomic<int> placed{0};
    for (int i = 0; i < count; ++i) net::co_spawn(io, place_order(bus, i, placed), net::detached);
    std::thread second([&] { io.run(); });  // two threads: the strand keeps the audit serial
    io.run();
    second.join();

    athomic::asio::unsubscribe(bus, audit);  // before the io_context and the strand go
    bus.close();
    log->info("{} order(s) placed, {} audited", placed.load(), audited);
    return placed == count && audited == count ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const athomic::EventBusError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
}
