#include "common/yaml_fields.h"

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "common/utf8.h"

namespace netvigil {

YamlFields::YamlFields(const YAML::Node& node, std::string path,
                       const std::string& source, absl::Status* error,
                       std::map<std::string, std::string>* where,
                       YamlFieldNaming naming)
    : node_(node),
      path_(std::move(path)),
      source_(source),
      error_(error),
      where_(where),
      naming_(naming) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    Fail(node_, "", "expected a mapping of keys");
  }
  RefuseDuplicateKeys();
}

YamlFields YamlFields::Nested(const YAML::Node& node, std::string path) const {
  return YamlFields(node, std::move(path), source_, error_, where_, naming_);
}

YamlFields YamlFields::Map(const std::string& key) {
  return Nested(Child(key), Join(key));
}

YAML::Node YamlFields::Lookup(const std::string& key) const {
  const YAML::Node& node = node_;  // const: operator[] must not add the key
  return node[key];
}

YAML::Node YamlFields::Child(const std::string& key) {
  seen_.insert(key);
  if (!ok() || !node_ || !node_.IsMap()) return YAML::Node();
  YAML::Node n = Lookup(key);
  if (!n) return YAML::Node();
  if (where_ != nullptr) {
    std::string w = Where(n);
    w.resize(w.size() - 2);  // without the ": "
    (*where_)[Join(key)] = std::move(w);
  }
  return n;
}

void YamlFields::String(const std::string& key, std::string* out) {
  YAML::Node n = Child(key);
  if (!ok() || !n || n.IsNull()) return;
  if (!n.IsScalar()) return Fail(n, key, "expected a string");
  if (!IsValidUtf8(n.Scalar())) return Fail(n, key, "is not valid UTF-8");
  *out = n.Scalar();
}

void YamlFields::Bool(const std::string& key, bool* out) {
  YAML::Node n = Child(key);
  if (!ok() || !n || n.IsNull()) return;
  bool v;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    return Fail(n, key,
                absl::StrCat("expected true or false, got '", Text(n), "'"));
  }
  *out = v;
}

void YamlFields::Uint(const std::string& key, uint64_t lo, uint64_t hi,
                      uint32_t* out) {
  uint64_t v = *out;
  Uint64(key, lo, hi, &v);
  *out = static_cast<uint32_t>(v);  // hi fits: callers pass a uint32 range
}

void YamlFields::Uint64(const std::string& key, uint64_t lo, uint64_t hi,
                        uint64_t* out) {
  YAML::Node n = Child(key);
  if (!ok() || !n || n.IsNull()) return;
  const std::string text = Text(n);
  const bool digits = n.IsScalar() && !text.empty() &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) {
    return Fail(n, key,
                absl::StrCat("expected a whole number, got '", text, "'"));
  }
  uint64_t v = 0;
  // 20 digits and more may not fit 64 bits: out of any range we read.
  if (!absl::SimpleAtoi(text, &v) || v < lo || v > hi) {
    return Fail(n, key,
                absl::StrCat("must be between ", lo, " and ", hi, ", got ",
                             text.size() > 24 ? "a longer number" : text));
  }
  *out = v;
}

void YamlFields::Double(const std::string& key, double lo, double hi,
                        bool open_lo, double* out) {
  YAML::Node n = Child(key);
  if (!ok() || !n || n.IsNull()) return;
  double v = 0;
  if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v) || !std::isfinite(v)) {
    return Fail(n, key, absl::StrCat("expected a number, got '", Text(n), "'"));
  }
  if ((open_lo ? v <= lo : v < lo) || v > hi) {
    return Fail(n, key,
                absl::StrCat("must be ", open_lo ? "above " : "at least ", lo,
                             " and at most ", hi, ", got ", n.Scalar()));
  }
  *out = v;
}

void YamlFields::Duration(const std::string& key, absl::Duration lo,
                          absl::Duration hi, absl::Duration* out) {
  YAML::Node n = Child(key);
  if (!ok() || !n || n.IsNull()) return;
  absl::Duration d;
  if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) ||
      d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return Fail(n, key,
                absl::StrCat("expected a duration such as 30s, 5m or 1h, got '",
                             Text(n), "'"));
  }
  if (d < lo || d > hi) {
    return Fail(n, key,
                absl::StrCat("must be between ", absl::FormatDuration(lo),
                             " and ", absl::FormatDuration(hi), ", got ",
                             absl::FormatDuration(d)));
  }
  *out = d;
}

void YamlFields::Check(bool holds, const std::string& key,
                       const std::string& why) {
  if (holds || !ok()) return;
  YAML::Node n = node_ && node_.IsMap() ? Lookup(key) : YAML::Node();
  Fail(n ? n : node_, key, why);
}

void YamlFields::Finish() {
  if (!ok() || !node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.Scalar();
    if (seen_.count(key) != 0) continue;
    const std::string known = absl::StrJoin(seen_, ", ");
    *error_ = absl::InvalidArgumentError(
        naming_ == YamlFieldNaming::kQuoted
            ? absl::StrCat(Where(kv.first), "unknown field '", Join(key),
                           "' (known here: ", known, ")")
            : absl::StrCat(Where(kv.first), Join(key),
                           ": unknown field (known here: ", known, ")"));
    return;
  }
}

void YamlFields::RefuseDuplicateKeys() {
  if (!ok() || !node_ || !node_.IsMap()) return;
  std::map<std::string, YAML::Mark> first;
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar()) {
      return Fail(kv.first, "", "a key must be a plain word");
    }
    auto [it, inserted] = first.emplace(kv.first.Scalar(), kv.first.Mark());
    if (!inserted) {
      return Fail(kv.first, kv.first.Scalar(),
                  absl::StrCat("given twice, on line ", it->second.line + 1,
                               " and on line ", kv.first.Mark().line + 1,
                               "; keep one"));
    }
  }
}

void YamlFields::Fail(const YAML::Node& n, const std::string& key,
                      const std::string& what) {
  if (!ok()) return;
  const std::string name = key.empty() ? path_ : Join(key);
  *error_ = absl::InvalidArgumentError(
      naming_ == YamlFieldNaming::kQuoted
          ? absl::StrCat(Where(n), "field '", name, "': ", what)
          : absl::StrCat(Where(n), name, ": ", what));
}

std::string YamlFields::Where(const YAML::Node& n) const {
  const YAML::Mark m = n ? n.Mark() : YAML::Mark::null_mark();
  if (m.line < 0) return absl::StrCat(source_, ": ");
  return absl::StrCat(source_, ":", m.line + 1, ":", m.column + 1, ": ");
}

std::string YamlFields::Join(const std::string& key) const {
  return path_.empty() ? key : absl::StrCat(path_, ".", key);
}

std::string YamlFields::Text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

}  // namespace netvigil
