// The OpenAPI document the binary serves (http/openapi.json, embedded) against the router:
// every route the router knows is documented with exactly its methods, and every documented
// operation is routed to an action. (Responses are checked against the document by
// contract.responses, with every exchange of the black-box tests.)

#include <catch2/catch.hpp>

#include <set>
#include <string>

#include <boost/json.hpp>

#include "http/docs.hpp"
#include "http/router.hpp"

using namespace todo::http;

namespace {

const boost::json::object& paths() {
  static const boost::json::value doc = boost::json::parse(openapi_json());
  return doc.at("paths").as_object();
}

const char* const http_methods[] = {"get", "put", "post", "delete", "options", "head", "patch",
                                    "trace"};

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

/// The methods a path item documents, in upper case.
std::set<std::string> documented(const boost::json::object& item) {
  std::set<std::string> out;
  for (const char* m : http_methods)
    if (item.contains(m))
      out.insert(upper(m));
  return out;
}

/// The methods of an Allow value, without HEAD (GET's twin, RFC 9110 §9.3.2, not listed as an
/// operation) and OPTIONS (the CORS preflight).
std::set<std::string> allowed(std::string_view allow) {
  std::set<std::string> out;
  std::string cur;
  for (char c : std::string{allow} + ",") {
    if (c == ',') {
      if (!cur.empty() && cur != "HEAD" && cur != "OPTIONS")
        out.insert(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

/// A concrete path for a template: {id} -> 42, {user_id} -> u1, {name} -> swagger-ui.css.
std::string concrete(std::string t) {
  for (auto [param, value] : {std::pair{"{id}", "42"}, std::pair{"{user_id}", "u1"},
                              std::pair{"{name}", "swagger-ui.css"}})
    for (auto at = t.find(param); at != std::string::npos; at = t.find(param))
      t.replace(at, std::string{param}.size(), value);
  return t;
}

} // namespace

TEST_CASE("the served OpenAPI document is 3.1 JSON with the bearer scheme") {
  auto doc = boost::json::parse(openapi_json());
  CHECK(std::string{doc.at("openapi").as_string()}.substr(0, 4) == "3.1.");
  CHECK(doc.at("components").at("securitySchemes").as_object().size() >= 1);
  CHECK(paths().size() >= 8);
}

TEST_CASE("every route the router knows is documented with exactly its methods") {
  for (size_t i = 0; i < known_routes().size(); ++i) {
    const auto& known = known_routes()[i];
    INFO(known.path);
    auto it = paths().find(std::string{known.path});
    REQUIRE(it != paths().end());
    CHECK(documented(it->value().as_object()) == allowed(known.allow));
    // And the router agrees with its own list for a concrete path.
    auto r = route("GET", concrete(std::string{known.path}));
    CHECK(r.result != route_result::outcome::not_found);
    CHECK(r.allow == known.allow);
    CHECK(r.known == static_cast<int>(i)); // the route label of /metrics
  }
}

TEST_CASE("every documented operation is routed") {
  std::set<std::string> known;
  for (const auto& k : known_routes())
    known.insert(std::string{k.path});
  for (const auto& [path, item] : paths()) {
    INFO(std::string{path});
    CHECK(known.count(std::string{path}) == 1);
    for (const auto& m : documented(item.as_object())) {
      INFO(m);
      auto r = route(m, concrete(std::string{path}));
      CHECK(r.result == route_result::outcome::ok);
    }
  }
}
