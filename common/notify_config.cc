#include "common/notify_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/yaml_fields.h"

namespace netvigil {
namespace {

// Channel names appear in logs, alert subjects and the `notify test`
// command line: a plain word.
bool IsChannelName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char ch : n) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' &&
        ch != '_' && ch != '.') {
      return false;
    }
  }
  return true;
}

// An HTTP header name (RFC 9110 token).
bool IsHeaderName(const std::string& n) {
  if (n.empty() || n.size() > 100) return false;
  for (char ch : n) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) &&
        std::string("!#$%&'*+-.^_`|~").find(ch) == std::string::npos) {
      return false;
    }
  }
  return true;
}

// The host part of "scheme://host[:port]/...": "[::1]" keeps its brackets.
std::string UrlHost(const std::string& url) {
  const size_t start = url.find("://");
  if (start == std::string::npos) return "";
  std::string rest = url.substr(start + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string::npos) return "";  // no userinfo
  if (!rest.empty() && rest[0] == '[') {
    return rest.substr(0, rest.find(']') + 1);
  }
  return rest.substr(0, rest.find(':'));
}

bool IsLoopbackHost(const std::string& h) {
  return h == "localhost" || h == "[::1]" || absl::StartsWith(h, "127.");
}

bool ParseSeverity(const std::string& text, v1::Severity* out) {
  if (text == "info")
    *out = v1::SEVERITY_INFO;
  else if (text == "warning")
    *out = v1::SEVERITY_WARNING;
  else if (text == "critical")
    *out = v1::SEVERITY_CRITICAL;
  else
    return false;
  return true;
}

void ParseChannel(YamlFields& t, const YAML::Node& n, NotifyChannelConfig* c) {
  t.String("name", &c->name);
  t.String("type", &c->type);
  if (t.ok() && !IsChannelName(c->name)) {
    return t.Check(false, "name",
                   "is required: letters, digits, '-', '_' or '.', at most 64");
  }
  if (t.ok() && c->type != "webhook" && c->type != "command" &&
      c->type != "sendmail") {
    return t.Check(false, "type", "expected webhook, command or sendmail");
  }
  t.Sequence("kinds", [&](const YAML::Node& k, const std::string& path) {
    YamlFields d = t.Nested(YAML::Node(), path);
    if (!k.IsScalar() || k.Scalar().empty()) {
      return d.Fail(k, "", "expected an alert kind such as new_listener");
    }
    c->kinds.push_back(k.Scalar());
  });
  std::string severity = "info";
  t.String("min_severity", &severity);
  if (t.ok() && !ParseSeverity(severity, &c->min_severity)) {
    return t.Check(false, "min_severity", "expected info, warning or critical");
  }
  t.Duration("timeout", absl::Milliseconds(100), absl::Minutes(5), &c->timeout);
  if (c->type == "webhook") {
    t.String("url", &c->url);
    t.String("ca_file", &c->ca_file);
    {
      YamlFields h = t.Map("header");
      h.String("name", &c->header_name);
      h.String("secret_file", &c->header_value.file);
      h.String("secret_env", &c->header_value.env);
      h.Finish();
      if (h.ok() && !c->header_name.empty() && !IsHeaderName(c->header_name)) {
        h.Check(false, "name", "not an HTTP header name");
      }
      if (h.ok() && !c->header_name.empty() && !c->header_value.given()) {
        h.Check(false, "name", "needs secret_file or secret_env for its value");
      }
      if (h.ok() && c->header_name.empty() && c->header_value.given()) {
        h.Check(false, "name", "is required with a header value");
      }
    }
    {
      YamlFields h = t.Map("hmac");
      h.String("header", &c->hmac_header);
      h.String("secret_file", &c->hmac_secret.file);
      h.String("secret_env", &c->hmac_secret.env);
      h.Finish();
      if (h.ok() && !IsHeaderName(c->hmac_header)) {
        h.Check(false, "header", "not an HTTP header name");
      }
      if (h.ok() && !c->hmac_secret.file.empty() &&
          !c->hmac_secret.env.empty()) {
        h.Check(false, "secret_env",
                "give secret_file or secret_env, not both");
      }
    }
    if (t.ok()) {
      const bool https = absl::StartsWith(c->url, "https://");
      const bool http = absl::StartsWith(c->url, "http://");
      const std::string host = UrlHost(c->url);
      if ((!https && !http) || host.empty()) {
        t.Check(false, "url", "expected an https:// URL");
      } else if (http && !IsLoopbackHost(host)) {
        t.Check(false, "url",
                "plain http:// is allowed to a loopback address only; use "
                "https://");
      } else if (c->url.find_first_of(" \r\n\t") != std::string::npos) {
        t.Check(false, "url", "must not contain white space");
      }
    }
    if (t.ok() && !c->ca_file.empty() && c->ca_file[0] != '/') {
      t.Check(false, "ca_file", "expected an absolute path");
    }
  } else if (c->type == "command") {
    t.Sequence("argv", [&](const YAML::Node& k, const std::string& path) {
      YamlFields d = t.Nested(YAML::Node(), path);
      if (!k.IsScalar()) return d.Fail(k, "", "expected a string");
      c->argv.push_back(k.Scalar());
    });
    if (t.ok() &&
        (c->argv.empty() || c->argv[0].empty() || c->argv[0][0] != '/')) {
      t.Check(false, "argv",
              "is required: a list whose first element is an absolute path "
              "(no shell runs it)");
    }
  } else if (c->type == "sendmail") {
    t.String("path", &c->sendmail_path);
    t.String("from", &c->from);
    t.Sequence("to", [&](const YAML::Node& k, const std::string& path) {
      YamlFields d = t.Nested(YAML::Node(), path);
      // An address goes into a header: no line breaks, no separators.
      if (!k.IsScalar() || k.Scalar().empty() ||
          k.Scalar().find_first_of("\r\n,;<> \t") != std::string::npos) {
        return d.Fail(k, "", "expected one mail address such as me@home.arpa");
      }
      c->to.push_back(k.Scalar());
    });
    if (t.ok() && c->to.empty()) t.Check(false, "to", "is required");
    if (t.ok() && (c->sendmail_path.empty() || c->sendmail_path[0] != '/')) {
      t.Check(false, "path", "expected an absolute path");
    }
    if (t.ok() && c->from.find_first_of("\r\n,;<> \t") != std::string::npos) {
      t.Check(false, "from", "expected one mail address");
    }
  }
  t.Finish();
}

}  // namespace

absl::StatusOr<std::string> ReadNotifySecret(const NotifySecret& secret) {
  if (!secret.env.empty()) {
    const char* v = std::getenv(secret.env.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::NotFoundError(absl::StrCat(
          "environment variable ", secret.env, " is not set or empty"));
    }
    return std::string(v);
  }
  if (!secret.file.empty()) {
    std::ifstream in(secret.file, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("secret file ", secret.file, " cannot be read"));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string v = ss.str();
    if (!v.empty() && v.back() == '\n') v.pop_back();
    if (!v.empty() && v.back() == '\r') v.pop_back();
    if (v.empty() || v.size() > 4096 ||
        v.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("secret file ", secret.file,
                       " must hold one line of 1 to 4096 bytes"));
    }
    return v;
  }
  return std::string();
}

void ParseNotifyConfig(YamlFields& f, NotifyConfig* out) {
  f.Duration("min_interval", absl::ZeroDuration(), absl::Hours(24),
             &out->min_interval);
  f.Uint("digest_after", 1, 100000, &out->digest_after);
  f.Duration("expire_after", absl::Seconds(1), absl::Hours(24 * 30),
             &out->expire_after);
  f.Duration("fail_alert_after", absl::Seconds(1), absl::Hours(24 * 7),
             &out->fail_alert_after);
  f.Duration("retry_initial", absl::Milliseconds(100), absl::Hours(1),
             &out->retry_initial);
  f.Duration("retry_max", absl::Milliseconds(100), absl::Hours(24),
             &out->retry_max);
  f.Duration("gather", absl::ZeroDuration(), absl::Minutes(5), &out->gather);
  f.Duration("poll_interval", absl::Milliseconds(100), absl::Minutes(5),
             &out->poll_interval);
  f.Duration("claim_lease", absl::ZeroDuration(), absl::Hours(1),
             &out->claim_lease);
  f.String("web_url", &out->web_url);
  std::set<std::string> names;
  f.Sequence("channels", [&](const YAML::Node& n, const std::string& path) {
    YamlFields t = f.Nested(n, path);
    if (!n.IsMap())
      return t.Check(false, "", "expected a mapping with name, type");
    NotifyChannelConfig c;
    ParseChannel(t, n, &c);
    if (t.ok() && !names.insert(c.name).second) {
      t.Check(false, "name",
              absl::StrCat("duplicate channel name '", c.name, "'"));
    }
    out->channels.push_back(std::move(c));
  });
  if (f.ok() && out->retry_max < out->retry_initial) {
    f.Check(false, "retry_max", "must not be less than retry_initial");
  }
  absl::Duration slowest = absl::ZeroDuration();
  for (const NotifyChannelConfig& c : out->channels) {
    slowest = std::max(slowest, c.timeout);
  }
  if (f.ok() && out->claim_lease > absl::ZeroDuration() &&
      out->claim_lease < 3 * slowest) {
    f.Check(false, "claim_lease",
            absl::StrCat("must be at least three timeouts of the slowest "
                         "channel (",
                         absl::FormatDuration(3 * slowest), ")"));
  }
  if (f.ok() && !out->web_url.empty() &&
      !absl::StartsWith(out->web_url, "https://") &&
      !absl::StartsWith(out->web_url, "http://")) {
    f.Check(false, "web_url", "expected an http(s):// URL");
  }
  f.Finish();
}

}  // namespace netvigil
