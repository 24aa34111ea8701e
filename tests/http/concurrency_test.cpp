// Concurrency, ordering and durability through the real server and PostgreSQL.

#include <catch2/catch.hpp>

#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "tests/http/http_client.hpp"

using namespace todo::test;
namespace json = boost::json;

TEST_CASE("50 concurrent toggles of one task flip it exactly 50 times") {
  auto& server = shared_server();
  auto user = fresh_user("complete");
  header_list auth{{"Authorization", "Bearer " + token_for(user)},
                   {"Content-Type", "application/json"}};
  http_client c{server.port()};
  auto made = c.request("POST", "/api/tasks", auth, R"({"title":"flip"})");
  REQUIRE(made.status == 201);
  auto id = std::to_string(json::parse(made.body).at("id").as_int64());
  std::mutex m;
  std::vector<std::string> stamps;
  int trues = 0, oks = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 50; ++i)
    ts.emplace_back([&] {
      http_client mine{server.port()};
      auto r = mine.request("PATCH", "/api/tasks/" + id + "/complete", {auth[0]});
      std::lock_guard<std::mutex> g{m};
      if (r.status == 200) {
        ++oks;
        auto v = json::parse(r.body);
        if (v.at("completed").as_bool())
          ++trues;
        stamps.push_back(json::value_to<std::string>(v.at("updated_at")));
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(oks == 50);
  CHECK(trues == 25); // each toggle saw the one before it
  CHECK(std::set<std::string>(stamps.begin(), stamps.end()).size() >= 1);
  auto final = c.request("GET", "/api/tasks/" + id, {auth[0]});
  CHECK(json::parse(final.body).at("completed") == false); // 50 flips: back to the start
}

TEST_CASE("100 concurrent creates give 100 distinct tasks") {
  auto& server = shared_server();
  auto user = fresh_user("create");
  header_list auth{{"Authorization", "Bearer " + token_for(user)},
                   {"Content-Type", "application/json"}};
  std::mutex m;
  std::set<int64_t> ids;
  std::vector<std::thread> ts;
  for (int w = 0; w < 10; ++w)
    ts.emplace_back([&, w] {
      http_client mine{server.port()};
      for (int i = 0; i < 10; ++i) {
        auto r = mine.request("POST", "/api/tasks", auth,
                              R"({"title":"t)" + std::to_string(w * 10 + i) + "\"}");
        std::lock_guard<std::mutex> g{m};
        if (r.status == 201)
          ids.insert(json::parse(r.body).at("id").as_int64());
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(ids.size() == 100);
  http_client c{server.port()};
  auto list = c.request("GET", "/api/tasks", {auth[0]});
  CHECK(list.header("x-total-count") == "100");
  CHECK(json::parse(list.body).as_array().size() == 100);
}

TEST_CASE("data survives a server restart, and SIGTERM exits 0") {
  server_process server;
  server.start();
  auto user = fresh_user("restart");
  header_list auth{{"Authorization", "Bearer " + token_for(user)},
                   {"Content-Type", "application/json"}};
  std::string id;
  {
    http_client c{server.port()};
    auto r = c.request("POST", "/api/tasks", auth, R"({"title":"persist me"})");
    REQUIRE(r.status == 201);
    id = std::to_string(json::parse(r.body).at("id").as_int64());
  }
  CHECK(server.stop(SIGTERM) == 0);
  server.start();
  http_client c{server.port()};
  auto r = c.request("GET", "/api/tasks/" + id, {auth[0]});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body).at("title") == "persist me");
  // kill -9 loses nothing that was acknowledged
  std::vector<std::string> acked;
  for (int i = 0; i < 20; ++i) {
    auto w = c.request("POST", "/api/tasks", auth, R"({"title":"k)" + std::to_string(i) + "\"}");
    REQUIRE(w.status == 201);
    acked.push_back(std::to_string(json::parse(w.body).at("id").as_int64()));
  }
  server.stop(SIGKILL);
  server.start();
  http_client after{server.port()};
  for (const auto& a : acked)
    CHECK(after.request("GET", "/api/tasks/" + a, {auth[0]}).status == 200);
  CHECK(server.stop(SIGINT) == 0);
}
