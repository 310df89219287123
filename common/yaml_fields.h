// Strict reading of the mappings of a YAML config file: typed and
// range-checked fields, a key given twice or a key nobody reads refused, and
// every error naming the file, the line, the column and the field's full
// path. The collector config (common/collector_config.cc) and the analysis
// options (collector/analysis/analysis_options.cc) both read with it.
// Thread-compatible: a YamlFields, its Nested() readers and the error they
// share belong to one thread.
#ifndef NETVIGIL_COMMON_YAML_FIELDS_H_
#define NETVIGIL_COMMON_YAML_FIELDS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace netvigil {

// How an error names its field. Both spellings are kept because users'
// scripts and the tests match them (README, Configuration).
enum class YamlFieldNaming {
  // "FILE:L:C: field 'probes.path.count': why" and
  // "FILE:L:C: unknown field 'probes.path.cont' (known here: ...)".
  kQuoted,
  // "FILE:L:C: analysis.path_loss_percent: why" and
  // "FILE:L:C: analysis.path_los_percent: unknown field (known here: ...)".
  kPlain,
};

// Reads the keys of one mapping and remembers which were asked for, so that
// Finish() can report the rest as unknown. A field that is absent or null
// keeps the value its output already holds (the default). The first error
// wins; every read after it is a no-op, so a caller reads all its fields and
// checks the error once.
class YamlFields {
 public:
  // `node` is the mapping (absent or null: every field defaults) found at
  // `path` in the file ("" at the top, "probes.path", "targets[0]").
  // `source` names the file in errors and must outlive the reader. `error`
  // is shared by all the readers of one document. `where`, when given,
  // learns "FILE:LINE:COL" of every field read, keyed by its path. A node
  // that is not a mapping, a key that is not a plain word and a key given
  // twice (yaml-cpp keeps both entries and answers with the first, so the
  // line that looks like it wins would be ignored) fail at once.
  YamlFields(const YAML::Node& node, std::string path,
             const std::string& source, absl::Status* error,
             std::map<std::string, std::string>* where = nullptr,
             YamlFieldNaming naming = YamlFieldNaming::kQuoted);

  bool ok() const { return error_->ok(); }
  const absl::Status& status() const { return *error_; }

  // A reader of `node` at `path` sharing this one's file, error, places
  // and naming (a list element, a mapping reached some other way).
  YamlFields Nested(const YAML::Node& node, std::string path) const;

  // The child mapping `key` (possibly absent: every field then defaults).
  YamlFields Map(const std::string& key);

  // The raw child `key`, marked as known; a null node when absent or after
  // an error.
  YAML::Node Child(const std::string& key);

  // A scalar that is valid UTF-8 (strings end up in proto3 messages).
  void String(const std::string& key, std::string* out);
  // true/false (and YAML's yes/no, on/off spellings).
  void Bool(const std::string& key, bool* out);
  // Decimal digits only (no sign, no exponent), within [lo, hi].
  void Uint(const std::string& key, uint64_t lo, uint64_t hi, uint32_t* out);
  void Uint64(const std::string& key, uint64_t lo, uint64_t hi, uint64_t* out);
  // A finite number in [lo, hi], or in (lo, hi] when `open_lo`.
  void Double(const std::string& key, double lo, double hi, bool open_lo,
              double* out);
  // "30s", "5m", "1h30m", "250ms" (absl::ParseDuration; no infinity) within
  // [lo, hi].
  void Duration(const std::string& key, absl::Duration lo, absl::Duration hi,
                absl::Duration* out);

  // A list; each element is handed to `each(node, path)` with its own path
  // ("targets[2]"). Stops at the first error.
  template <typename F>
  void Sequence(const std::string& key, F each) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    if (!n.IsSequence()) return Fail(n, key, "expected a list");
    for (size_t i = 0; i < n.size() && ok(); ++i) {
      each(n[i], absl::StrCat(Join(key), "[", i, "]"));
    }
  }

  // A check across fields, reported at `key` when the file gives it, else
  // at the mapping.
  void Check(bool holds, const std::string& key, const std::string& why);

  // Reports the first key that no read asked for.
  void Finish();

  // Records an error at `n` about `key` ("": the mapping itself) unless an
  // error is already recorded.
  void Fail(const YAML::Node& n, const std::string& key,
            const std::string& what);

  // "FILE:LINE:COL: " of `n`, or "FILE: " when it has no place.
  std::string Where(const YAML::Node& n) const;
  // The full path of `key` in this mapping.
  std::string Join(const std::string& key) const;

  const std::string& source() const { return source_; }
  absl::Status* error() const { return error_; }
  std::map<std::string, std::string>* where() const { return where_; }

 private:
  // The value of `key` without creating it; invalid when absent.
  YAML::Node Lookup(const std::string& key) const;
  void RefuseDuplicateKeys();
  static std::string Text(const YAML::Node& n);

  YAML::Node node_;
  std::string path_;
  const std::string& source_;
  absl::Status* error_;
  std::map<std::string, std::string>* where_;
  YamlFieldNaming naming_;
  std::set<std::string> seen_;
};

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_YAML_FIELDS_H_
