#include "actors/tokens/token_cli.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/json.hpp>

#include "actors/tokens/jwks.hpp"
#include "actors/tokens/jwt.hpp"
#include "config/settings.hpp"

namespace todo::jwt {

namespace {

int token_command(const std::vector<std::string>& args) {
  std::string sub, jwk_file, iss, aud;
  long long ttl = 3600;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= args.size()) {
        std::cerr << name << ": missing value\n";
        std::exit(2);
      }
      return args[++i];
    };
    if (args[i] == "--sub")
      sub = value("--sub");
    else if (args[i] == "--ttl") {
      auto v = value("--ttl");
      char* end = nullptr;
      errno = 0;
      ttl = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0 || ttl < -315360000 || ttl > 315360000) {
        std::cerr << "--ttl: must be an integer number of seconds (at most ten years)\n";
        return 2;
      }
    }
    else if (args[i] == "--jwk")
      jwk_file = value("--jwk");
    else if (args[i] == "--iss")
      iss = value("--iss");
    else if (args[i] == "--aud")
      aud = value("--aud");
    else if (args[i] == "--help" || args[i] == "-h") {
      std::cout << "usage: todo-api token --sub USER_ID [--ttl SECONDS] [--iss I] [--aud A]"
                   " [--jwk PRIVATE_JWK_FILE]\n"
                   "Prints an HS256 token signed with BETTER_AUTH_SECRET (env or .env), or an\n"
                   "EdDSA token signed with the private JWK (see `todo-api gen-jwk`).\n";
      return 0;
    } else {
      std::cerr << args[i] << ": unknown option\n";
      return 2;
    }
  }
  if (sub.empty()) {
    std::cerr << "--sub: required\n";
    return 2;
  }
  auto now = unix_seconds();
  boost::json::object claims{{"sub", sub}, {"iat", now}, {"exp", now + ttl}};
  if (!iss.empty())
    claims["iss"] = iss;
  if (!aud.empty())
    claims["aud"] = aud;
  auto payload = boost::json::serialize(claims);
  if (!jwk_file.empty()) {
    std::ifstream in{jwk_file};
    if (!in) {
      std::cerr << "--jwk: cannot read the file\n";
      return 2;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
      std::cout << sign_eddsa(ss.str(), payload) << "\n";
    } catch (const std::exception&) {
      std::cerr << "--jwk: not an Ed25519 private JWK\n";
      return 2;
    }
    return 0;
  }
  auto env = environment_map();
  auto dotenv = parse_dotenv(read_dotenv_file());
  std::string secret = env.count("BETTER_AUTH_SECRET") ? env["BETTER_AUTH_SECRET"]
                                                       : dotenv["BETTER_AUTH_SECRET"];
  if (secret.empty()) {
    std::cerr << "BETTER_AUTH_SECRET: required\n";
    return 2;
  }
  std::cout << sign_hs256(secret, payload) << "\n";
  return 0;
}


} // namespace

std::optional<int> run_subcommand(const std::vector<std::string>& args) {
  if (args.empty())
    return std::nullopt;
  if (args[0] == "token")
    return token_command({args.begin() + 1, args.end()});
  if (args[0] == "gen-jwk") {
    if (args.size() > 1 && (args[1] == "--help" || args[1] == "-h")) {
      std::cout << "usage: todo-api gen-jwk [--kid KID]\n"
                   "Prints a fresh Ed25519 private JWK (kid \"dev\" unless given). Its public\n"
                   "half (without \"d\") is a one-key JWKS for BETTER_AUTH_JWKS_FILE; sign dev\n"
                   "tokens with it: todo-api token --sub USER --jwk FILE.\n";
      return 0;
    }
    // Prints a fresh Ed25519 private JWK; its public half (without "d") is a one-key JWKS.
    std::string kid = args.size() > 2 && args[1] == "--kid" ? args[2] : "dev";
    std::cout << jwks::generate_ed25519_jwk(kid) << "\n";
    return 0;
  }
  return std::nullopt;
}

} // namespace todo::jwt
