// Exceptions thrown by the athomic runtime. Every message names what was wrong, where, and
// what is allowed.
#pragma once

#include <athomic/export.h>

#include <stdexcept>
#include <string>

namespace athomic {

/// Base of every error the bus raises (the seed's EventBusError).
class ATHOMIC_API EventBusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A setting is missing, malformed or out of range. The message names the file (or environment
/// variable), the key path, the value and what is allowed.
class ATHOMIC_API ConfigError : public EventBusError {
 public:
  using EventBusError::EventBusError;
};

/// A provider plugin could not be found, loaded or initialised.
class ATHOMIC_API PluginError : public EventBusError {
 public:
  using EventBusError::EventBusError;
};

}  // namespace athomic
