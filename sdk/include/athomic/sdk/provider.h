/*
 * athomic provider ABI — the one boundary between the athomic host and a transport plugin.
 *
 * Pure C, standard includes only, so that any language able to export a C symbol can implement
 * a provider. Nothing here is C++: no std:: type, no exception, no C++ object crosses.
 *
 * Naming tells direction:
 *   athomic_*_t / athomic_*        types
 *   athomic_provider_*             implemented by the plugin, called by the host
 *   athomic_host_*                 implemented by the host, called by the plugin
 *
 * Ownership: every pointer member and parameter carries an OWNERSHIP note.
 *   "borrowed"  valid only for the duration of the call that received it;
 *   "host-owned" / "plugin-owned" lives until that side frees it with its own function.
 *
 * Versioning (major.minor): the host refuses a plugin of a different major, or of a minor above
 * its own. Every struct starts with its own size (`struct_size`); fields are only ever appended,
 * so a reader checks `struct_size` before touching a field added in a later minor.
 *
 * Lifetime of the library: the host never unloads a plugin (it keeps it until process exit), so
 * static storage in a plugin outlives every call.
 */
#ifndef ATHOMIC_SDK_PROVIDER_H
#define ATHOMIC_SDK_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major version: a change here breaks every existing plugin. */
#define ATHOMIC_ABI_VERSION_MAJOR 1
/** ABI minor version: appended fields or functions only; older plugins keep working. */
#define ATHOMIC_ABI_VERSION_MINOR 5

/** Name of the single symbol a plugin exports (see athomic_provider_entry_fn). */
#define ATHOMIC_PROVIDER_ENTRY_SYMBOL "athomic_provider_entry"

#if defined(_WIN32)
#define ATHOMIC_PLUGIN_EXPORT __declspec(dllexport)
#else
#define ATHOMIC_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/** Result of every fallible call. Static texts: athomic_status_text(). */
typedef enum athomic_status {
  ATHOMIC_OK = 0,
  ATHOMIC_ERR_INVALID_ARGUMENT = 1, /**< a parameter or the configuration is wrong */
  ATHOMIC_ERR_CONNECT = 2,          /**< the transport could not reach its server */
  ATHOMIC_ERR_STATE = 3,            /**< the call is not allowed in the current state */
  ATHOMIC_ERR_BACKPRESSURE = 4,     /**< the transport cannot accept more right now */
  ATHOMIC_ERR_DECODE = 5,           /**< a received message is malformed */
  ATHOMIC_ERR_UNSUPPORTED = 6,      /**< the provider lacks the capability */
  ATHOMIC_ERR_INTERNAL = 7          /**< anything else, including a caught exception */
} athomic_status;

/** A view on bytes. OWNERSHIP: borrowed unless the enclosing declaration says otherwise. */
typedef struct athomic_str {
  const char* data; /**< not NUL-terminated in general; may be NULL when size == 0 */
  size_t size;
} athomic_str;

/**
 * ABI 1.3: one message header (ATHOMIC_CAP_HEADERS): a name and its value, both text. A name
 * may come more than once. Names are compared without regard to case by the host (W3C Trace
 * Context, like HTTP, treats them so). The layout of this struct is fixed for ABI 1.x: it is
 * used in arrays, and has no struct_size.
 * OWNERSHIP: as the array that holds it (see athomic_message.headers, athomic_received).
 */
typedef struct athomic_header {
  athomic_str name;  /**< e.g. "traceparent"; never empty */
  athomic_str value; /**< may be empty */
} athomic_header;

/** Log levels understood by athomic_host_api.log. */
typedef enum athomic_log_level {
  ATHOMIC_LOG_TRACE = 0,
  ATHOMIC_LOG_DEBUG = 1,
  ATHOMIC_LOG_INFO = 2,
  ATHOMIC_LOG_WARN = 3,
  ATHOMIC_LOG_ERROR = 4
} athomic_log_level;

/** Whether an interest names one event exactly or is a pattern: dot-separated parts where `*`
 *  stands for exactly one part and a final `>` for one or more (as in NATS subjects). */
typedef enum athomic_interest_kind {
  ATHOMIC_INTEREST_EXACT = 0,
  ATHOMIC_INTEREST_PATTERN = 1
} athomic_interest_kind;

/** Capability flags a provider declares in athomic_provider_info.capabilities. */
enum {
  /** Events stay in this process and are handed back by handle (athomic_host_api.deliver_event);
   *  the host does not serialise them. */
  ATHOMIC_CAP_IN_PROCESS = 1u << 0,
  /** Events cross process boundaries: the host encodes each one into athomic_message.body and
   *  the provider hands received bytes back through athomic_host_api.deliver_message. */
  ATHOMIC_CAP_REMOTE = 1u << 1,
  /** The transport can subscribe to ATHOMIC_INTEREST_PATTERN interests natively (the host then
   *  tells it of patterns, and it delivers their messages with deliver_message_to). A remote
   *  provider without it is refused pattern subscriptions; in-process providers need nothing:
   *  the host matches patterns itself. */
  ATHOMIC_CAP_PATTERN = 1u << 2,
  /** ABI 1.3: the transport carries named text headers beside the body, both ways: publish
   *  sends athomic_message.headers, and received messages come back with theirs through
   *  athomic_host_api.deliver_received. The host honours it only for plugins built for 1.3 or
   *  later: ABI 1.0 and 1.1 declared this bit with no host meaning. */
  ATHOMIC_CAP_HEADERS = 1u << 3,
  /* 1u << 4 was declared by ABI 1.0 and 1.1 (persistence) and never used by a host; it stays
   * reserved. */
  /** Messages from one publisher on one event name arrive in publish order. */
  ATHOMIC_CAP_ORDERED = 1u << 5,
  /** ABI 1.2: the provider completes every publish it accepts with
   *  athomic_host_api.publish_done — the transport's verdict (and receiver count, if it has
   *  one), or a failure when it could not deliver, at the latest when stop returns. A publish's
   *  Completion then reports that outcome. */
  ATHOMIC_CAP_ACKNOWLEDGE = 1u << 6,
  /** ABI 1.5, with ATHOMIC_CAP_IN_PROCESS: while started, publish does nothing but hand the
   *  event straight back with deliver_event on the calling thread and succeed. The host may then
   *  dispatch without calling publish at all (the `local` provider: the call and the hand-back
   *  are most of an inline publish's cost). A provider that filters, delays, counts or may
   *  refuse must not declare it. Not honoured for plugins built for an earlier minor. */
  ATHOMIC_CAP_LOOPBACK = 1u << 7
};

/** ABI 1.2: the state of a provider's connection, reported with athomic_host_api.report_state. */
typedef enum athomic_connection_state {
  ATHOMIC_CONNECTION_UP = 0,           /**< connected; events flow */
  ATHOMIC_CONNECTION_RECONNECTING = 1, /**< lost; trying again, publishes are buffered */
  ATHOMIC_CONNECTION_DOWN = 2          /**< lost and not trying any more (or not yet started) */
} athomic_connection_state;

/** ABI 1.2: the type of a provider setting, for the host's validation. */
typedef enum athomic_setting_type {
  ATHOMIC_SETTING_BOOL = 0,
  ATHOMIC_SETTING_INT = 1,     /**< integer within [min, max] */
  ATHOMIC_SETTING_NUMBER = 2,  /**< finite number within [min, max] */
  ATHOMIC_SETTING_SECONDS = 3, /**< finite number of seconds within [min, max] */
  ATHOMIC_SETTING_STRING = 4,  /**< text; one of `choices` when that is set */
  ATHOMIC_SETTING_TABLE = 5    /**< a nested table: its keys are declared with dotted paths */
} athomic_setting_type;

/** ABI 1.2: flags of a provider setting. */
enum {
  ATHOMIC_SETTING_SECRET = 1u << 0 /**< masked in every message, log line and printout */
};

/**
 * ABI 1.2: one key of a provider's settings, relative to `events.provider`.
 * OWNERSHIP: plugin-owned, static storage.
 */
typedef struct athomic_setting {
  uint32_t struct_size;
  /** Dotted path below events.provider, e.g. "provider.provider.uri". */
  const char* path;
  athomic_setting_type type;
  uint32_t flags;            /**< ATHOMIC_SETTING_* */
  /** The default as JSON text (e.g. "5", "\"localhost\"", "true"); NULL: no default. */
  const char* default_json;
  /** One line: what the key means. */
  const char* description;
  double min;                /**< ATHOMIC_SETTING_INT / NUMBER / SECONDS: the bounds */
  double max;
  /** ATHOMIC_SETTING_STRING: NULL-terminated list of the allowed values, or NULL: any text. */
  const char* const* choices;
} athomic_setting;

/** ABI 1.2: a setting's value (athomic_host_api.setting). */
typedef struct athomic_setting_value {
  uint32_t struct_size;
  athomic_setting_type type;
  int boolean;        /**< ATHOMIC_SETTING_BOOL */
  int64_t integer;    /**< ATHOMIC_SETTING_INT */
  double number;      /**< ATHOMIC_SETTING_NUMBER and ATHOMIC_SETTING_SECONDS */
  athomic_str text;   /**< ATHOMIC_SETTING_STRING. OWNERSHIP: host-owned, valid until destroy */
} athomic_setting_value;

/** Opaque host state for one bus. OWNERSHIP: host-owned; valid from create until destroy. */
typedef struct athomic_host_ctx athomic_host_ctx;
/** Opaque in-flight event. OWNERSHIP: host-owned; borrowed by the provider for one publish call. */
typedef struct athomic_host_event athomic_host_event;
/** Opaque error sink. OWNERSHIP: host-owned; borrowed for the call that received it. */
typedef struct athomic_error_sink athomic_error_sink;
/** Opaque provider instance. OWNERSHIP: plugin-owned; freed by athomic_provider_vtable.destroy. */
typedef struct athomic_provider athomic_provider;

/**
 * ABI 1.3: a received message, for athomic_host_api.deliver_received.
 * OWNERSHIP: borrowed, with everything it points to, for one deliver_received call.
 */
typedef struct athomic_received {
  uint32_t struct_size; /**< sizeof(athomic_received) as the provider compiled it */
  /** The event name (not the transport's channel or subject). */
  athomic_str event_name;
  /** The bytes exactly as received. */
  athomic_str body;
  /** Empty: the message is for the exact name's handlers (as deliver_message). Otherwise the
   *  interest the transport matched it to, exactly as interest_add gave it (as
   *  deliver_message_to). */
  athomic_str interest;
  athomic_interest_kind kind; /**< of `interest`; ignored when it is empty */
  /** The headers the message arrived with, in the transport's order; NULL when none. The host
   *  reads the W3C Trace Context ones ("traceparent", "tracestate") when
   *  events.context.traceparent is on, and ignores the others. */
  const athomic_header* headers;
  size_t header_count;
} athomic_received;

/**
 * Services the host offers a plugin. OWNERSHIP: host-owned, valid until process exit.
 * Every function may be called from any thread.
 */
typedef struct athomic_host_api {
  uint32_t struct_size; /**< sizeof(athomic_host_api) as the host compiled it */
  uint16_t abi_major;   /**< the host's ATHOMIC_ABI_VERSION_MAJOR */
  uint16_t abi_minor;   /**< the host's ATHOMIC_ABI_VERSION_MINOR */

  /**
   * Record why a call failed. The host copies @p message; call at most once per sink.
   * @param sink     borrowed; the sink passed to the failing call
   * @param message  borrowed; UTF-8 text naming what was wrong and where
   */
  void (*error_set)(athomic_error_sink* sink, athomic_str message);

  /**
   * Write a line to the host's log, under the logger "athomic.provider.<name>".
   * @param host     the host context given to create
   * @param message  borrowed; must not contain secrets (mask passwords first)
   */
  void (*log)(athomic_host_ctx* host, athomic_log_level level, athomic_str message);

  /**
   * In-process providers: hand the event given to publish back to the host for dispatch.
   * May only be called during the publish call that carried @p event, on that thread, once.
   * @return ATHOMIC_OK; ATHOMIC_ERR_STATE when the event was handed back already;
   *         ATHOMIC_ERR_INVALID_ARGUMENT for an event this bus did not give the provider
   */
  athomic_status (*deliver_event)(athomic_host_ctx* host, athomic_host_event* event);

  /**
   * Remote providers: hand a received message to the host, which decodes the envelope
   * (payload object with the execution context under "_nala_context"), restores the context
   * and dispatches it to the handlers of @p event_name. Malformed bodies are counted, logged
   * and skipped by the host. The call returns ATHOMIC_ERR_DECODE for a body over the size
   * limit, and in inline dispatch for any malformed body; in pool dispatch the host decodes on
   * a worker, after the call has returned ATHOMIC_OK.
   *
   * ABI 1.2: in pool dispatch the call returns ATHOMIC_ERR_BACKPRESSURE, at once, when the
   * host's dispatch queue is full. The message was NOT taken: keep it, stop reading from the
   * transport (so that the server feels the pressure), and deliver it again after a short
   * wait (about a millisecond), keeping the order of what follows. For plugins built for an
   * older minor the host instead waits up to its publish timeout for room and then drops the
   * message, counting it.
   * May be called from any provider thread between a successful start and the return of stop.
   * @param event_name borrowed; the event name (not the transport's channel or subject)
   * @param body       borrowed; the bytes exactly as received
   */
  athomic_status (*deliver_message)(athomic_host_ctx* host, athomic_str event_name,
                                    athomic_str body);

  /** Monotonic clock in nanoseconds, the one the host uses for its own timings. */
  uint64_t (*clock_now_ns)(void);

  /* ---- ABI 1.1 and later: check struct_size before reading ---- */

  /** NUL-terminated version of the host library, e.g. "0.1.0", for the plugin's own logs. */
  const char* host_version;

  /* ---- ABI 1.2 and later: check struct_size before reading ---- */

  /**
   * Complete a publish the provider accepted (ATHOMIC_CAP_ACKNOWLEDGE providers; the token is
   * athomic_message.publish_token). Exactly once for every publish that returned ATHOMIC_OK —
   * possibly before it returns — and never for one that failed; from any thread, at the latest
   * before stop returns; never while holding a lock the provider's publish takes.
   * @param token      the message's publish_token
   * @param status     ATHOMIC_OK when the transport took it; otherwise why it did not
   * @param receivers  how many subscribers the transport delivered it to, or -1 when unknown
   * @param error      borrowed; for a failure, what went wrong (names the server, not secrets)
   */
  void (*publish_done)(athomic_host_ctx* host, uint64_t token, athomic_status status,
                       int64_t receivers, athomic_str error);

  /**
   * Report a change of the connection's state (and, for RECONNECTING or DOWN, why). The host
   * keeps it for health checks, counts outages and logs the change. Any thread, any time
   * between create and destroy; not while holding a lock the provider's publish takes.
   * @param detail borrowed; e.g. "connection reset by 127.0.0.1:6379"
   */
  void (*report_state)(athomic_host_ctx* host, athomic_connection_state state,
                       athomic_str detail);

  /**
   * Report messages the transport lost before they reached the provider — a client library's
   * slow-consumer limit, a server that dropped a subscriber — so the host counts them
   * (BusStats.dropped_by_transport) and logs them, rate-limited. Any thread.
   * @param event_name borrowed; the event they were for, or empty when unknown
   * @param count      how many (at least 1)
   * @param reason     borrowed; e.g. "slow consumer: pending limit of 65536 messages reached"
   */
  void (*report_dropped)(athomic_host_ctx* host, athomic_str event_name, uint64_t count,
                         athomic_str reason);

  /**
   * Read one of the provider's own settings, as the host validated it against the keys the
   * provider declared (athomic_provider_info.settings): with its default when unset.
   * May be called from create on. The string a STRING setting points to is host-owned and
   * valid until destroy returns.
   * @param path   borrowed; a declared path, e.g. "provider.provider.uri"
   * @param out    receives the value; the member for the declared type is set
   * @return ATHOMIC_OK; ATHOMIC_ERR_INVALID_ARGUMENT for a path that was not declared, or one
   *         with no value and no default
   */
  athomic_status (*setting)(athomic_host_ctx* host, athomic_str path,
                            athomic_setting_value* out);

  /**
   * Remote providers with ATHOMIC_CAP_PATTERN: hand a received message to the handlers of one
   * interest — the pattern (kind ATHOMIC_INTEREST_PATTERN, exactly as interest_add gave it) the
   * transport matched it to. A transport delivers a message once per subscription that matches
   * it; so does this, so an event matching a name and a pattern reaches each handler once.
   * deliver_message, for these providers, reaches the exact name's handlers only. The host
   * checks that event_name is a valid event name the pattern matches (`*` one part, a final `>`
   * one or more) and counts it undeliverable otherwise: a transport whose wildcards are wider
   * (a Redis glob's `*` crosses dots) may pass on what it matched.
   * Otherwise as deliver_message (threads, backpressure, ownership).
   * @param event_name borrowed; the concrete event name the message was published to
   * @param interest   borrowed; the pattern (or, with ATHOMIC_INTEREST_EXACT, the name)
   */
  athomic_status (*deliver_message_to)(athomic_host_ctx* host, athomic_str event_name,
                                       athomic_str body, athomic_str interest,
                                       athomic_interest_kind kind);

  /* ---- ABI 1.3 and later: check struct_size before reading ---- */

  /**
   * Remote providers: hand a received message to the host with what else the transport
   * carried — its headers (ATHOMIC_CAP_HEADERS). With an empty `interest` it is
   * deliver_message; with one, deliver_message_to (ATHOMIC_CAP_PATTERN providers). Otherwise
   * as those (threads, backpressure: on ATHOMIC_ERR_BACKPRESSURE nothing was taken, headers
   * included). A provider that finds a host older than 1.3 (struct_size too small) calls those
   * instead, without the headers.
   * @param message borrowed, with everything it points to, for the call; the host copies what
   *                it keeps
   */
  athomic_status (*deliver_received)(athomic_host_ctx* host,
                                     const athomic_received* message);
} athomic_host_api;

/** One message to publish. OWNERSHIP: borrowed, with everything it points to, for one call. */
typedef struct athomic_message {
  uint32_t struct_size;
  /** The event name, e.g. "user.created". */
  athomic_str event_name;
  /** ATHOMIC_CAP_REMOTE providers: the encoded envelope (UTF-8 JSON). Empty otherwise. */
  athomic_str body;
  /** ATHOMIC_CAP_IN_PROCESS providers: the event to pass to deliver_event. NULL otherwise. */
  athomic_host_event* event;

  /* ---- ABI 1.2 and later ---- */

  /** ATHOMIC_CAP_ACKNOWLEDGE providers: the token to complete with publish_done once publish
   *  returned ATHOMIC_OK (a publish that fails completes nothing). 0 for other providers. */
  uint64_t publish_token;

  /* ---- ABI 1.3 and later: check struct_size before reading ---- */

  /** ATHOMIC_CAP_HEADERS providers: headers to send with the body, in order (today the W3C
   *  Trace Context "traceparent" and "tracestate", when events.context.traceparent is on and
   *  the context has a trace). NULL when none, and for other providers. Names are non-empty
   *  printable ASCII without ':' or spaces; values printable ASCII: both can travel as NATS or
   *  HTTP header text. Copy what is kept past the call, as for the body. */
  const athomic_header* headers;
  size_t header_count;
} athomic_message;

/**
 * The functions of a provider. OWNERSHIP: plugin-owned, static storage.
 *
 * Threads: create, start, stop and destroy are called by one thread at a time, in that order
 * (start and stop possibly repeated). publish may be called from many threads at once, between
 * a successful start and the return of stop. interest_add and interest_remove are serialised
 * by the host with each other, never concurrently with start or stop, and only while started;
 * on start the host re-adds every interest that still has handlers.
 *
 * Re-entrancy: in inline dispatch a handler runs inside deliver_message, on the provider's own
 * delivering thread, and may publish, subscribe and unsubscribe there: so publish,
 * interest_add and interest_remove may arrive on that thread, inside a deliver_* call of the
 * provider's. The provider must therefore hold no lock across a call into the host, and must
 * never wait on its own delivering thread (interest_add there returns without waiting for the
 * server's confirmation). The host never calls stop from inside a handler (close() is refused
 * there), and holds no lock a handler needs while it calls the provider.
 *
 * After interest_remove(T) returns, the provider should stop delivering T (late deliveries are
 * counted as undeliverable and dropped by the host). After stop returns, the provider must not
 * call into the host again, from any thread. What stop does with publishes it accepted: it
 * may try to send them within a bounded time; an ATHOMIC_CAP_ACKNOWLEDGE provider completes
 * every one that it could not deliver with a failure before stop returns.
 *
 * Errors: every `err` parameter is a valid sink; set a message (at most once) when returning
 * anything but ATHOMIC_OK.
 */
typedef struct athomic_provider_vtable {
  uint32_t struct_size;

  /**
   * Create an instance for one bus.
   * @param host        host-owned; valid until process exit
   * @param host_ctx    host-owned; valid until destroy returns
   * @param config_json borrowed; this provider's configuration subtree as a JSON object
   * @param out         receives the new plugin-owned instance on success
   * @param err         borrowed; set a message on failure
   */
  athomic_status (*create)(const athomic_host_api* host, athomic_host_ctx* host_ctx,
                           athomic_str config_json, athomic_provider** out,
                           athomic_error_sink* err);

  /** Free an instance; it is stopped first if it was started. Never fails. */
  void (*destroy)(athomic_provider* self);

  /** Connect or otherwise become able to publish and deliver. */
  athomic_status (*start)(athomic_provider* self, athomic_error_sink* err);

  /** Disconnect; after return no callback into the host happens. Never fails. */
  void (*stop)(athomic_provider* self);

  /**
   * Publish one message. Returns once the transport has accepted it (queued or sent);
   * ATHOMIC_ERR_BACKPRESSURE when it cannot, in which case nothing was kept.
   */
  athomic_status (*publish)(athomic_provider* self, const athomic_message* message,
                            athomic_error_sink* err);

  /**
   * The host now has handlers for @p topic (an event name, or a pattern when kind says so).
   * Return once the transport has the subscription (so that an event published right after
   * subscribe() returns is received), except on the provider's own delivering thread. While
   * disconnected, remember it and subscribe on reconnect, and return at once. A refusal by the
   * server is an error (the host then installs no handler).
   * Remote providers only: from ABI 1.2 the host does not call interest_add or
   * interest_remove on ATHOMIC_CAP_IN_PROCESS providers (every handler is in this process).
   * @param topic borrowed; copy it if kept
   */
  athomic_status (*interest_add)(athomic_provider* self, athomic_str topic,
                                 athomic_interest_kind kind, athomic_error_sink* err);

  /** The host no longer has handlers for @p topic. Never fails. */
  void (*interest_remove)(athomic_provider* self, athomic_str topic, athomic_interest_kind kind);

  /* ---- ABI 1.4 and later ---- */

  /**
   * The capabilities of this instance, as its settings allow: the host acts on those of
   * athomic_provider_info.capabilities that are also set here (e.g. a transport whose patterns
   * depend on a setting). NULL, or a plugin built for an older ABI: all the declared ones.
   * Called once, right after create. Never fails.
   */
  uint64_t (*instance_capabilities)(athomic_provider* self);
} athomic_provider_vtable;

/** What the entry symbol answers. OWNERSHIP: plugin-owned, static storage. */
typedef struct athomic_provider_info {
  uint32_t struct_size;
  uint16_t abi_major; /**< ATHOMIC_ABI_VERSION_MAJOR the plugin was compiled against */
  uint16_t abi_minor; /**< ATHOMIC_ABI_VERSION_MINOR the plugin was compiled against */
  const char* name;    /**< NUL-terminated backend name, e.g. "redis" */
  const char* version; /**< NUL-terminated version of the plugin itself */
  uint64_t capabilities; /**< ATHOMIC_CAP_* flags */
  const athomic_provider_vtable* vtable;

  /* ---- ABI 1.2 and later ---- */

  /** The provider's settings, NULL-terminated; NULL: none declared (the host then passes the
   *  events.provider table to create unvalidated, as ABI 1.1 did). The host refuses keys
   *  under events.provider that are not declared, with their origin and a did-you-mean. */
  const athomic_setting* const* settings;
} athomic_provider_info;

/**
 * The one symbol a plugin exports, named ATHOMIC_PROVIDER_ENTRY_SYMBOL.
 * Called once per load, from the loading thread.
 * @param host host-owned, valid until process exit; its abi_major/abi_minor tell the host's ABI
 * @return the plugin's description, or NULL if the plugin cannot work with this host
 */
typedef const athomic_provider_info* (*athomic_provider_entry_fn)(const athomic_host_api* host);

/** Static English text for a status code. */
static inline const char* athomic_status_text(athomic_status status) {
  switch (status) {
    case ATHOMIC_OK: return "ok";
    case ATHOMIC_ERR_INVALID_ARGUMENT: return "invalid argument";
    case ATHOMIC_ERR_CONNECT: return "connection failed";
    case ATHOMIC_ERR_STATE: return "not allowed in the current state";
    case ATHOMIC_ERR_BACKPRESSURE: return "transport cannot accept more";
    case ATHOMIC_ERR_DECODE: return "malformed message";
    case ATHOMIC_ERR_UNSUPPORTED: return "not supported by this provider";
    case ATHOMIC_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATHOMIC_SDK_PROVIDER_H */
