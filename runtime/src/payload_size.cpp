#include "payload_size.h"

#include <vector>

namespace athomic::detail {

namespace {

using json = nlohmann::json;

// Recursion for the usual shallow payloads; past this depth an explicit stack takes over, so a
// pathologically deep payload cannot overflow the publisher's stack.
constexpr int kRecursionDepth = 64;

std::size_t own_size(const json& value) noexcept {
  std::size_t n = sizeof(json);
  if (value.is_string()) n += value.get_ref<const json::string_t&>().capacity();
  if (value.is_binary()) n += value.get_binary().size();
  return n;
}

// One member of an object: the map node with its key.
std::size_t member_overhead(const std::string& key) noexcept {
  return 4 * sizeof(void*) + sizeof(std::string) + key.capacity();
}

std::size_t size_iteratively(const json& root) {
  std::size_t n = 0;
  std::vector<const json*> todo{&root};
  while (!todo.empty()) {
    const json* v = todo.back();
    todo.pop_back();
    n += own_size(*v);
    if (v->is_object()) {
      for (const auto& [key, member] : v->get_ref<const json::object_t&>()) {
        n += member_overhead(key);
        todo.push_back(&member);
      }
    } else if (v->is_array()) {
      for (const auto& item : v->get_ref<const json::array_t&>()) todo.push_back(&item);
    }
  }
  return n;
}

std::size_t size_of(const json& value, int depth) {
  if (depth > kRecursionDepth) return size_iteratively(value);
  std::size_t n = own_size(value);
  if (value.is_object()) {
    for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
      n += member_overhead(key) + size_of(member, depth + 1);
    }
  } else if (value.is_array()) {
    for (const auto& item : value.get_ref<const json::array_t&>()) n += size_of(item, depth + 1);
  }
  return n;
}

}  // namespace

std::size_t approximate_size(const nlohmann::json& value) noexcept {
  try {
    return size_of(value, 0);
  } catch (...) {
    return SIZE_MAX / 2;  // no memory to measure it: treat it as too large to queue
  }
}

}  // namespace athomic::detail
