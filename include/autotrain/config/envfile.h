// Parser for `falcon.env`-style files: the subset of POSIX shell that .env files use,
// evaluated without executing anything. The result equals what `set -a; source FILE` leaves
// in bash for every supported construct; anything outside the subset is an error that names
// FILE:LINE:COL, the offending text and a hint.
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::config {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based, in bytes
};

struct Diagnostic {
  SourceLocation where;
  std::string message;
  std::string hint;       // how to fix; may be empty
  std::string line_text;  // the source line, for a caret snippet; may be empty

  // "FILE:LINE:COL: error: message" + snippet + hint, ready to print; an empty severity gives
  // "FILE:LINE:COL: message" (for a logger that prints its own "warning: "). Anything shaped
  // like a Hugging Face token in the message, snippet or hint is masked.
  std::string format(std::string_view severity) const;
};

// Variables whose values are secrets, never shown in a diagnostic: HF_TOKEN and the other
// Hugging Face token variables (HUGGING_FACE_HUB_TOKEN, ...).
bool is_secret_name(std::string_view name);

// `text` with every run shaped like a Hugging Face token (`hf_` and 8 or more letters or
// digits) masked: the characters after `hf_` become '*', so columns stay where they were.
std::string mask_token_like(std::string_view text);

class EnvFileError : public std::runtime_error {
 public:
  explicit EnvFileError(std::vector<Diagnostic> errors);
  const std::vector<Diagnostic>& errors() const { return errors_; }

 private:
  std::vector<Diagnostic> errors_;
};

using Environment = std::map<std::string, std::string>;

struct EnvFileResult {
  // Every variable after the file ran: the starting environment plus what the file assigned.
  Environment variables;
  // Where each variable the file assigned was assigned last (`KEY=v`, `export KEY=v`,
  // `${KEY:=v}`), in assignment order of first appearance.
  std::map<std::string, SourceLocation> assigned_at;
  std::vector<std::string> assigned_names;
  // Variables whose value an expansion read ($X, ${X...}, X+=...): helpers such as PNAME in
  // AUTOTRAIN_PROJECT_NAME=out/$PNAME are used even though no key has their name.
  std::set<std::string> referenced;
  std::vector<Diagnostic> warnings;  // BOM, CRLF line ends
};

// Evaluates `text` (the contents of `filename`) starting from `environment`.
// Throws EnvFileError listing every error found (parsing resumes at the next line after
// an error, so independent mistakes are all reported).
EnvFileResult parse_env_file(std::string_view text, const std::string& filename,
                             Environment environment);

// Reads and evaluates a file; a missing or unreadable file is an EnvFileError too.
EnvFileResult load_env_file(const std::string& path, Environment environment);

// The process environment as a map.
Environment process_environment();

}  // namespace autotrain::config
