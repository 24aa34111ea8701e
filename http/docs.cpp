#include "http/docs.hpp"

#include <fstream>
#include <sstream>

#include <unistd.h>

#include "actors/model/task_json.hpp" // etag_of

namespace todo::http {

extern const char openapi_document[]; // generated from http/openapi.json (CMakeLists.txt)

namespace {

struct wanted_file {
  const char* name;
  const char* type;
};

// What the page loads; the standalone preset and the source maps are not needed.
constexpr wanted_file wanted[] = {
  {"swagger-ui.css", "text/css; charset=utf-8"},
  {"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
  {"favicon-32x32.png", "image/png"},
};

} // namespace

std::string_view openapi_json() {
  return openapi_document;
}

const std::string& openapi_etag() {
  static const std::string tag = etag_of(openapi_json());
  return tag;
}

std::string default_docs_dir() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return "swagger-ui/node_modules/swagger-ui-dist";
  std::string exe{buf, static_cast<size_t>(n)};
  auto slash = exe.rfind('/');
  auto bin = exe.substr(0, slash == std::string::npos ? 0 : slash);
  auto beside = bin + "/swagger-ui/node_modules/swagger-ui-dist"; // a build tree
  // `cmake --install`: <prefix>/bin/todo-api and <prefix>/share/todo-api/swagger-ui-dist.
  auto installed = bin + "/../share/todo-api/swagger-ui-dist";
  std::ifstream probe{beside + "/swagger-ui.css"};
  if (!probe && std::ifstream{installed + "/swagger-ui.css"})
    return installed;
  return beside;
}

docs_assets load_docs_assets(const std::string& dir) {
  docs_assets out;
  out.dir = dir;
  for (const auto& w : wanted) {
    std::ifstream in{dir + "/" + w.name, std::ios::binary};
    if (!in) {
      out.problem = dir + "/" + w.name + " is missing";
      out.files.clear();
      return out;
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    auto text = bytes.str();
    auto tag = etag_of(text);
    out.files[w.name] = docs_file{w.type, std::move(text), std::move(tag)};
  }
  return out;
}

std::string docs_page(const docs_assets& assets) {
  if (!assets.ok())
    return R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Todo API: docs</title></head>
<body><h1>Todo API</h1>
<p>Swagger UI's files are not installed, so this page cannot show the interactive
documentation. The OpenAPI document itself is served at <a href="/openapi.json">/openapi.json</a>.</p>
<p>The build installs them with npm (package <code>swagger-ui-dist</code>, pinned in
<code>http/docs/package-lock.json</code>); it could not this time (no <code>npm</code>, or no
access to the npm registry). To get them: install Node.js and npm, then run
<code>scripts/run</code> again (or <code>npm ci --prefix build/swagger-ui</code> with the files of
<code>http/docs/</code> copied there), or point <code>DOCS_DIR</code> at a
<code>swagger-ui-dist</code> directory and restart.</p>
</body></html>
)";
  return R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Todo API: docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: false,
  displayRequestDuration: true
});
</script>
</body>
</html>
)";
}

const docs_file* docs_asset(const docs_assets& assets, std::string_view name) {
  auto i = assets.files.find(std::string{name});
  return i == assets.files.end() ? nullptr : &i->second;
}

} // namespace todo::http
