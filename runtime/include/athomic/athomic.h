// The athomic event bus: everything an application needs.
#pragma once

#include <athomic/bus.h>
#include <athomic/context.h>
#include <athomic/errors.h>
#include <athomic/event.h>
#include <athomic/handlers.h>
#include <athomic/log.h>
#include <athomic/metrics.h>
#include <athomic/plugins.h>
#include <athomic/settings.h>
#include <athomic/typed.h>
