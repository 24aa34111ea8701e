#pragma once
// The token subcommands of todo-api: `token` mints a dev token (HS256 with BETTER_AUTH_SECRET,
// or EdDSA with a private JWK), `gen-jwk` makes an Ed25519 key.

#include <optional>
#include <string>
#include <vector>

namespace todo::jwt {

/// Runs `args` (argv without argv[0]) when it names a subcommand and returns its exit code;
/// returns nullopt for anything else (the server's own flags).
std::optional<int> run_subcommand(const std::vector<std::string>& args);

} // namespace todo::jwt
