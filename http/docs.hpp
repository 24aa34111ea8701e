#pragma once
// The contract as the service serves it: the OpenAPI document (http/openapi.json, embedded at
// build time) and the Swagger UI page at /docs, whose assets (npm's swagger-ui-dist) the build
// installs beside the binary and the service reads once at start-up: no CDN.

#include <map>
#include <string>
#include <string_view>

namespace todo::http {

/// The OpenAPI 3.1 document, byte for byte as committed in http/openapi.json.
std::string_view openapi_json();

/// Its ETag (etag_of the document), computed once.
const std::string& openapi_etag();

/// One file /docs serves.
struct docs_file {
  std::string content_type;
  std::string bytes;
  std::string etag; // etag_of(bytes), computed once when read
};

/// Swagger UI's assets, read at start-up.
struct docs_assets {
  std::string dir;                        // where they were looked for
  std::map<std::string, docs_file> files; // by name, e.g. "swagger-ui-bundle.js"
  std::string problem;                    // why they are missing (empty: all there)
  bool ok() const { return problem.empty(); }
};

/// Where the build installs swagger-ui-dist: <directory of this executable>/swagger-ui/
/// node_modules/swagger-ui-dist.
std::string default_docs_dir();

/// Reads the files /docs needs from `dir` (`problem` says which one is missing).
docs_assets load_docs_assets(const std::string& dir);

/// The /docs page: Swagger UI on /openapi.json, or (assets missing) how to install them.
std::string docs_page(const docs_assets& assets);

/// The asset named by a /docs/<name> path, or null.
const docs_file* docs_asset(const docs_assets& assets, std::string_view name);

} // namespace todo::http
