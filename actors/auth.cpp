#include "actors/auth.hpp"

#include <chrono>
#include <utility>

#include "config/log.hpp"

namespace todo {

namespace {

using self_ptr = auth_actor::stateful_pointer<auth_state>;

caf::error unauthorized(jwt::failure f) {
  return caf::make_error(errc::unauthorized, std::string{jwt::reason(f)});
}

int64_t wall_clock(const auth_state& st) {
  if (st.cfg.now)
    return st.cfg.now();
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Replaces the key set and the verifier; cached verdicts may rest on a removed key, so they go.
void install(self_ptr self, std::shared_ptr<const jwks::key_set> keys) {
  auto& st = self->state;
  st.keys = std::move(keys);
  st.verifier = std::make_shared<const jwt::verifier>(st.cfg.opts, st.keys);
  st.cache->clear();
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
      auto& st = self->state;
      auto now = wall_clock(st);
      if (auto hit = st.cache->find(token, now))
        return std::move(hit->subject);
      auto out = st.verifier->verify(token, now);
      if (out) {
        st.cache->insert(token, out.claims, now);
        return std::move(out.claims.subject);
      }
      if (!fetch_may_help(st, out))
        return unauthorized(out.error);
      if (!st.fetching) {
        // A flood of made-up kids must not turn into a flood of fetches.
        if (!may_fetch_now(self))
          return unauthorized(out.error);
        start_fetch(self, true);
      }
      if (st.waiting.size() >= st.cfg.max_waiting)
        return unauthorized(out.error);
      auto rp = self->make_response_promise<std::string>();
      st.waiting.push_back({std::move(token), rp});
      return rp;
    },
    [self](atom::jwks, uint64_t seq, bool ok, std::string& body) {
      auto& st = self->state;
      if (!st.fetching || seq != st.fetch_seq)
        return;
      st.fetching = false;
      if (ok)
        load(self, body, "BETTER_AUTH_JWKS_URL");
      else
        log::warn("JWKS fetch from BETTER_AUTH_JWKS_URL failed (" + body
                  + "); keeping the previous keys");
      auto waiting = std::move(st.waiting);
      st.waiting.clear();
      auto now = wall_clock(st);
      for (auto& w : waiting) {
        auto out = st.verifier->verify(w.token, now);
        if (out) {
          st.cache->insert(w.token, out.claims, now);
          w.rp.deliver(std::move(out.claims.subject));
        } else {
          w.rp.deliver(unauthorized(out.error));
        }
      }
    },
  };
}

} // namespace todo
