// One subscription: the handler, whether it is still subscribed, and (pool dispatch) its lanes.
#pragma once

#include "lane.h"

#include <athomic/bus.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace athomic::detail {

struct Subscriber {
  Subscriber(uint64_t id_, Handler fn_, std::string name_, bool pattern_, uint32_t lanes_)
      : id(id_), fn(std::move(fn_)), name(std::move(name_)), pattern(pattern_), lane_count(lanes_),
        more_lanes(lanes_ > 1 ? new Lane[lanes_ - 1] : nullptr) {
    for (uint32_t i = 0; i < lane_count; ++i) lane(i).owner = this;
  }

  // Pool dispatch: lane @p i of lane_count (inline dispatch has none).
  Lane& lane(uint32_t i) noexcept { return i == 0 ? first_lane : more_lanes[i - 1]; }
  const Lane& lane(uint32_t i) const noexcept { return i == 0 ? first_lane : more_lanes[i - 1]; }

  // The lane the next delivery goes to: the only one, or the next in turn when the subscriber
  // allowed several handler calls at once (max_concurrency > 1).
  Lane& next_lane() noexcept {
    if (lane_count == 1) return first_lane;
    return lane(next_lane_turn.fetch_add(1, std::memory_order_relaxed) % lane_count);
  }

  void ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const uint64_t id;
  const Handler fn;
  const std::string name;  // the event name, or the pattern
  const bool pattern;      // a wildcard subscription: its handler sees each event's own name
  // Cleared by unsubscribe before it waits; checked before every call.
  std::atomic<bool> active{true};
  // One held by the registry until no publisher can reach this subscriber any more, one per
  // scheduled lane.
  std::atomic<uint32_t> refs{1};
  const uint32_t lane_count;
  std::atomic<uint32_t> next_lane_turn{0};
  // The first lane lives in the subscriber (one allocation for the usual subscription).
  Lane first_lane;
  const std::unique_ptr<Lane[]> more_lanes;
};

}  // namespace athomic::detail
