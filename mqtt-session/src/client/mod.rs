//! Runtime-independent pieces shared by the async client adapters: options, broker URLs,
//! reconnect backoff and the correlation of completions with waiting callers. Nothing here
//! performs IO or reads a clock.
