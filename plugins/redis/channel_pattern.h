// Pattern subscriptions on Redis Pub/Sub: an athomic pattern (dot-separated parts, `*` for one
// part, a final `>` for one or more) becomes the glob of a PSUBSCRIBE, and each channel the
// server matches to that glob is checked against the pattern itself. Redis's glob knows no
// parts — its `*` crosses dots — so the glob only narrows what the server sends; the check
// decides. No I/O here: both are unit-tested against the host's own matcher.
#pragma once

#include <string>
#include <string_view>

namespace athomic::redis {

// Appends @p literal to @p glob so that it matches only itself: Redis's glob characters
// `[`, `]`, `?`, `*` and `\` get a backslash.
void append_glob_literal(std::string& glob, std::string_view literal);

// The PSUBSCRIBE glob of @p pattern (valid: the host checked it) on the channels
// @p channel_prefix + event name (the key prefix and separator, matched literally). A part `*`
// becomes `*`, a final `>` becomes `?*` (at least one more character, so at least one more
// part), a literal part itself, escaped.
std::string channel_glob(std::string_view channel_prefix, std::string_view pattern);

// Whether the event name @p name matches @p pattern part by part, as the host matches patterns:
// `*` one part, a final `>` one or more. Parts are never empty: a name with an empty part
// ("a..b", "a.", a Redis channel no athomic publisher can produce) matches no pattern.
bool pattern_matches(std::string_view pattern, std::string_view name) noexcept;

}  // namespace athomic::redis
