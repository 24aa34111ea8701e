#include "actors/auth.hpp"

#include <chrono>
#include <utility>

#include "config/log.hpp"
#include "config/metrics.hpp"

namespace todo {

namespace {

using self_ptr = auth_actor::stateful_pointer<auth_state>;

caf::error unauthorized(jwt::failure f) {
  return caf::make_error(errc::unauthorized, std::string{jwt::reason(f)});
}

int64_t wall_clock(const auth_state& st) {
  return st.cfg.now ? st.cfg.now() : jwt::unix_seconds();
}

/// Replaces the key set and the verifier; cached verdicts may rest on a removed key, so they go.
void install(self_ptr self, std::shared_ptr<const jwks::key_set> keys) {
  auto& st = self->state;
  st.keys = std::move(keys);
  st.verifier = std::make_shared<const jwt::verifier>(st.cfg.opts, st.keys);
  st.cache->clear();
  ++st.generation;
  if (st.cfg.generation)
    st.cfg.generation->store(st.generation, std::memory_order_release);
}

/// Parses a JWKS document, logs what was skipped, and installs it if it is new.
void load(self_ptr self, const std::string& document, const char* source) {
  auto& st = self->state;
  auto digest = token_cache::digest(document);
  if (st.keys && digest == st.jwks_digest)
    return;
  auto parsed = jwks::parse(document);
  for (const auto& w : parsed.warnings)
    log::warn(w);
  if (!parsed) {
    log::warn(std::string{"JWKS from "} + source + " unusable (" + parsed.error
              + "); keeping the previous keys");
    return;
  }
  log::info(std::string{"JWKS loaded from "} + source + ": "
            + std::to_string(parsed.keys->size()) + " key entries");
  st.jwks_digest = std::move(digest);
  install(self, std::move(parsed.keys));
}

/// Starts a fetch on a helper actor. Only a refetch for an unknown kid counts against the
/// interval: when the start-up fetch failed (the frontend was not up yet), the first token may
/// fetch again at once.
void start_fetch(self_ptr self, bool refetch) {
  auto& st = self->state;
  st.fetching = true;
  if (refetch)
    st.last_fetch = self->clock().now();
  auto seq = ++st.fetch_seq;
  auto fetch = st.cfg.fetch;
  auto url = st.cfg.jwks_url;
  auth_actor me = self;
  // CAF 0.17: spawning a function without arguments dereferences a null tuple pointer
  // (UBSan flags it), hence the unused argument here and in the gateway.
  auto helper = [fetch, url, me, seq](caf::event_based_actor* h, int) {
    jwks_fetch_result r;
    try {
      r = fetch(url);
    } catch (...) {
      r.error = "fetch failed";
    }
    bool ok = r.error.empty();
    h->send(me, atom::jwks::value, seq, ok, ok ? std::move(r.body) : std::move(r.error));
  };
  // The fetch blocks for up to its timeout, so it gets its own thread.
  if (st.cfg.detach_fetch)
    self->spawn<caf::detached>(helper, 0);
  else
    self->spawn(helper, 0);
}

/// Returns whether a JWKS fetch may reveal a key for a token refused with `out`.
bool fetch_may_help(const auth_state& st, const jwt::outcome& out) {
  return out.error == jwt::failure::unknown_key && !st.cfg.jwks_url.empty() && st.cfg.fetch
         && jwt::is_asymmetric(out.algorithm);
}

bool may_fetch_now(self_ptr self) {
  auto& st = self->state;
  return !st.last_fetch || self->clock().now() - *st.last_fetch >= st.cfg.refetch_interval;
}

// A token's verdict: the claims and how long they may be reused (0: not), an error, or
// "wait for the JWKS fetch in flight".
struct verdict {
  jwt::verified claims;
  int64_t until = 0;
  caf::error err;
  bool wait = false;
};

// Verifies `token` now, or from the cache; a refusal's outcome goes to `failed` if given.
verdict verify_now(auth_state& st, const std::string& token, jwt::outcome* failed = nullptr) {
  auto now = wall_clock(st);
  if (auto hit = st.cache->lookup(token, now)) {
    metrics::actors().token_auth_hits.fetch_add(1, std::memory_order_relaxed);
    return {std::move(hit->claims), hit->expires_at, {}, false};
  }
  metrics::actors().token_auth_misses.fetch_add(1, std::memory_order_relaxed);
  auto out = st.verifier->verify(token, now);
  if (!out) {
    auto err = unauthorized(out.error);
    if (failed)
      *failed = std::move(out);
    return {{}, 0, std::move(err), false};
  }
  auto until = st.cache->insert(token, out.claims, now);
  return {std::move(out.claims), until, {}, false};
}

// The same, but when the token names a key the JWKS may have gained since, starts a fetch
// (or joins the one in flight) and answers "wait".
verdict verify_or_wait(self_ptr self, const std::string& token) {
  auto& st = self->state;
  jwt::outcome failed;
  auto v = verify_now(st, token, &failed);
  if (!v.err || !fetch_may_help(st, failed))
    return v;
  if (!st.fetching) {
    // A flood of made-up kids must not turn into a flood of fetches.
    if (!may_fetch_now(self))
      return v;
    start_fetch(self, true);
  }
  if (st.waiting.size() >= st.cfg.max_waiting)
    return v;
  return {{}, 0, {}, true};
}

} // namespace

auth_actor::behavior_type auth(auth_actor::stateful_pointer<auth_state> self, auth_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.cache.emplace(st.cfg.cache_size, st.cfg.cache_ttl_seconds);
  st.verifier = std::make_shared<const jwt::verifier>(st.cfg.opts);
  if (!st.cfg.jwks_file.empty()) {
    auto parsed = jwks::parse_file(st.cfg.jwks_file);
    for (const auto& w : parsed.warnings)
      log::warn(w);
    if (parsed) {
      log::info("JWKS loaded from BETTER_AUTH_JWKS_FILE: " + std::to_string(parsed.keys->size())
                + " key entries");
      install(self, std::move(parsed.keys));
    } else {
      log::error("BETTER_AUTH_JWKS_FILE unusable: " + parsed.error);
    }
  }
  if (!st.cfg.jwks_url.empty()) {
    if (st.cfg.fetch)
      start_fetch(self, false);
    else
      log::error("BETTER_AUTH_JWKS_URL is set but no fetcher was configured");
  }
  return {
    [self](atom::verify, std::string& token) -> caf::result<std::string> {
      auto v = verify_or_wait(self, token);
      if (v.wait) {
        auto rp = self->make_response_promise<std::string>();
        self->state.waiting.push_back({std::move(token), rp, std::nullopt});
        return rp;
      }
      if (v.err)
        return std::move(v.err);
      return std::move(v.claims.subject);
    },
    [self](atom::claims, std::string& token) -> caf::result<std::string, int64_t, uint64_t> {
      auto v = verify_or_wait(self, token);
      if (v.wait) {
        auto rp = self->make_response_promise<std::string, int64_t, uint64_t>();
        self->state.waiting.push_back({std::move(token), std::nullopt, rp});
        return rp;
      }
      if (v.err)
        return std::move(v.err);
      return {std::move(v.claims.subject), v.until, self->state.generation};
    },
    [self](atom::jwks, uint64_t seq, bool ok, std::string& body) {
      auto& st = self->state;
      if (!st.fetching || seq != st.fetch_seq)
        return;
      st.fetching = false;
      (ok ? metrics::actors().jwks_fetch_ok : metrics::actors().jwks_fetch_error)
        .fetch_add(1, std::memory_order_relaxed);
      if (ok)
        load(self, body, "BETTER_AUTH_JWKS_URL");
      else
        log::warn("JWKS fetch from BETTER_AUTH_JWKS_URL failed (" + body
                  + "); keeping the previous keys");
      auto waiting = std::move(st.waiting);
      st.waiting.clear();
      for (auto& w : waiting) {
        auto v = verify_now(st, w.token);
        if (w.rp) {
          if (v.err)
            w.rp->deliver(std::move(v.err));
          else
            w.rp->deliver(std::move(v.claims.subject));
        } else if (w.claims_rp) {
          if (v.err)
            w.claims_rp->deliver(std::move(v.err));
          else
            w.claims_rp->deliver(std::move(v.claims.subject), v.until, st.generation);
        }
      }
    },
  };
}

} // namespace todo
