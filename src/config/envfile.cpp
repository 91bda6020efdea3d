// Shell-subset evaluator for .env files. See include/autotrain/config/envfile.h.
//
// The grammar follows bash for what .env files use: simple commands made only of assignments
// (optionally after `export`), separated by newlines or `;`, with `#` comments at word starts.
// Words are expanded as bash expands an assignment's value: tilde, parameter expansion (the
// four defaulting operators), quote removal; no word splitting or globbing. Anything that
// would run code is rejected, never evaluated.
#include "autotrain/config/envfile.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

extern char** environ;

namespace autotrain::config {

bool is_secret_name(std::string_view name) {
  // HF_TOKEN, HUGGING_FACE_HUB_TOKEN (huggingface_hub's older name), HF_API_TOKEN, ...; not
  // ADD_EOS_TOKEN and the like, whose values are no secret.
  bool token = name.size() >= 5 && name.substr(name.size() - 5) == "TOKEN";
  return token && (name.find("HF") != std::string_view::npos || name.find("HUGGING") != std::string_view::npos);
}

std::string mask_token_like(std::string_view text) {
  std::string out(text);
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  for (size_t i = 0; i + 3 <= out.size(); ++i) {
    if (out.compare(i, 3, "hf_") != 0) continue;
    size_t end = i + 3;
    while (end < out.size() && alnum(out[end])) ++end;
    if (end - (i + 3) >= 8) {
      for (size_t k = i + 3; k < end; ++k) out[k] = '*';
      i = end - 1;
    }
  }
  return out;
}

std::string Diagnostic::format(std::string_view severity) const {
  const std::string what = mask_token_like(message);
  std::string prefix = where.line > 0 ? fmt::format("{}:{}:{}: ", where.file, where.line, where.column)
                                      : fmt::format("{}: ", where.file);
  std::string out = severity.empty() ? prefix + what : fmt::format("{}{}: {}", prefix, severity, what);
  if (!line_text.empty()) {
    const std::string shown = mask_token_like(line_text);
    std::string caret;
    for (int i = 0; i + 1 < where.column && i < static_cast<int>(shown.size()); ++i)
      caret += shown[i] == '\t' ? '\t' : ' ';
    out += fmt::format("\n    {}\n    {}^", shown, caret);
  }
  if (!hint.empty()) out += fmt::format("\n  hint: {}", mask_token_like(hint));
  return out;
}

namespace {
std::string join_errors(const std::vector<Diagnostic>& errors) {
  std::string all;
  for (const auto& e : errors) {
    if (!all.empty()) all += '\n';
    all += e.format("error");
  }
  return all;
}
}  // namespace

EnvFileError::EnvFileError(std::vector<Diagnostic> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_operator(char c) { return c == '|' || c == '&' || c == '<' || c == '>' || c == '(' || c == ')'; }

// Thrown to abandon the current line after recording an error; `fatal` stops the whole
// parse (an unterminated quote swallows the rest of the file, so later errors would be noise).
struct LineAbort {
  bool fatal = false;
};

class Evaluator {
 public:
  Evaluator(std::string_view text, std::string file, Environment env)
      : src_(text), file_(std::move(file)) {
    result_.variables = std::move(env);
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  EnvFileResult run() {
    while (pos_ < src_.size()) {
      secret_from_ = std::string_view::npos;
      try {
        parse_line();
      } catch (const LineAbort& abort) {
        if (abort.fatal) break;
        skip_rest_of_line();
      }
    }
    if (!errors_.empty()) throw EnvFileError(std::move(errors_));
    return std::move(result_);
  }

  void add_warning(size_t at, std::string message, std::string hint) {
    result_.warnings.push_back(diagnostic(at, std::move(message), std::move(hint)));
  }

 private:
  // --- positions and diagnostics --------------------------------------------------------
  SourceLocation location(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());  // 1-based
    size_t start = line_starts_[line - 1];
    return {file_, static_cast<int>(line), static_cast<int>(offset - start + 1)};
  }

  std::string line_text(int line) const {
    size_t start = line_starts_[line - 1];
    size_t end = src_.find('\n', start);
    if (end == std::string_view::npos) end = src_.size();
    return std::string(src_.substr(start, end - start));
  }

  // Parts of line `line` (offsets within it) that hold a secret and are never shown: the value
  // of an HF_TOKEN assignment being read (which may have started on an earlier line) and the rest
  // of its line, whatever follows `HF_TOKEN=` / `HF_TOKEN =` on the line (even where the
  // assignment did not parse), and runs shaped like a token (hf_...).
  std::vector<std::pair<size_t, size_t>> secret_ranges(int line) const {
    std::vector<std::pair<size_t, size_t>> ranges;
    const size_t start = line_starts_[line - 1];
    const std::string text = line_text(line);
    const size_t end = start + text.size();
    if (secret_from_ != std::string_view::npos && secret_from_ <= end)
      ranges.emplace_back(secret_from_ > start ? secret_from_ - start : 0, text.size());
    for (size_t i = 0; i < text.size();) {
      if (!is_name_start(text[i]) || (i > 0 && is_name_char(text[i - 1]))) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < text.size() && is_name_char(text[j])) ++j;
      if (is_secret_name(std::string_view(text).substr(i, j - i))) {
        size_t k = j;
        while (k < text.size() && is_blank(text[k])) ++k;
        if (k < text.size() && text[k] == '+') ++k;
        if (k < text.size() && text[k] == '=') ranges.emplace_back(k + 1, text.size());
      }
      i = j;
    }
    const std::string masked = mask_token_like(text);
    for (size_t i = 0; i < text.size(); ++i) {
      if (masked[i] == text[i]) continue;
      size_t j = i;
      while (j < text.size() && masked[j] != text[j]) ++j;
      ranges.emplace_back(i, j);
      i = j;
    }
    return ranges;
  }

  // Whether the source byte at `offset` is part of a secret (see secret_ranges).
  bool secret_at(size_t offset) const {
    SourceLocation where = location(std::min(offset, src_.size()));
    size_t column = static_cast<size_t>(where.column - 1);
    for (const auto& [from, to] : secret_ranges(where.line))
      if (column >= from && column < to) return true;
    return false;
  }

  // A word of the source for a message: quoted, or '***' where it may be part of a secret.
  std::string quoted(size_t offset, std::string_view word) const {
    if (secret_at(offset) || mask_token_like(word) != word) return "'***'";
    return fmt::format("'{}'", word);
  }

  Diagnostic diagnostic(size_t at, std::string message, std::string hint) const {
    Diagnostic d;
    d.where = location(std::min(at, src_.size()));
    d.message = std::move(message);
    d.hint = std::move(hint);
    d.line_text = line_text(d.where.line);
    for (const auto& [from, to] : secret_ranges(d.where.line))
      for (size_t i = from; i < to && i < d.line_text.size(); ++i)
        if (d.line_text[i] != '\t') d.line_text[i] = '*';
    return d;
  }

  [[noreturn]] void fail(size_t at, std::string message, std::string hint = {}, bool fatal = false) {
    errors_.push_back(diagnostic(at, std::move(message), std::move(hint)));
    throw LineAbort{fatal};
  }

  char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }
  bool at_end() const { return pos_ >= src_.size(); }

  void skip_rest_of_line() {
    size_t nl = src_.find('\n', pos_);
    pos_ = nl == std::string_view::npos ? src_.size() : nl + 1;
  }

  // Blanks between words; a backslash-newline there joins lines, as in sh.
  void skip_blanks() {
    while (!at_end()) {
      if (is_blank(peek())) {
        ++pos_;
      } else if (peek() == '\\' && peek(1) == '\n') {
        pos_ += 2;
      } else {
        break;
      }
    }
  }

  std::string read_name() {
    size_t start = pos_;
    if (!is_name_start(peek())) return {};
    while (is_name_char(peek())) ++pos_;
    return std::string(src_.substr(start, pos_ - start));
  }

  bool word_ends_at(size_t at) const {
    if (at >= src_.size()) return true;
    char c = src_[at];
    return is_blank(c) || c == '\n' || c == ';';
  }

  // --- variables ----------------------------------------------------------------------------
  std::string assigning_;  // the variable whose value is being read, while it is

  // Expansions can multiply a value's size (X2=$X1$X1, X3=$X2$X2, ...): past this, no config
  // value is meant, and memory would run out before an error could say where.
  static constexpr size_t kMaxValueBytes = size_t{1} << 20;
  void append_expansion(std::string& out, const std::string& text, size_t dollar) {
    if (out.size() + text.size() > kMaxValueBytes)
      fail(dollar, fmt::format("this expansion makes the value longer than {} MiB", kMaxValueBytes >> 20),
           "expansions that repeat a variable grow the value each time; write the value out");
    out += text;
  }

  // Variables bash sets itself, which a sourced file can read although neither it nor the
  // environment sets them. The stable ones are given; the others (RANDOM, LINENO, PPID, ...) are
  // refused by require_set.
  static std::optional<std::string> bash_variable(const std::string& name) {
    if (name == "UID") return std::to_string(::getuid());
    if (name == "EUID") return std::to_string(::geteuid());
    if (name == "HOSTNAME") {
      char host[HOST_NAME_MAX + 1] = {};
      if (::gethostname(host, sizeof host - 1) == 0) return std::string(host);
    }
    if (name == "PWD") {
      std::error_code ec;
      auto cwd = std::filesystem::current_path(ec);
      if (!ec) return cwd.string();
    }
    return std::nullopt;
  }
  static bool is_bash_own_variable(const std::string& name) {
    static const std::set<std::string> kNames = {"BASH",      "BASHOPTS", "BASHPID",      "EPOCHREALTIME", "EPOCHSECONDS",
                                                 "GROUPS",    "HOSTTYPE", "LINENO",       "MACHTYPE",      "OLDPWD",
                                                 "OPTERR",    "OPTIND",   "OSTYPE",       "PPID",          "RANDOM",
                                                 "SECONDS",   "SHELLOPTS", "SHLVL",       "SRANDOM",       "HISTCMD"};
    return kNames.count(name) != 0 || name.starts_with("BASH_");
  }

  std::string lookup(const std::string& name) {
    // KEY=${KEY:=v} and KEY+=v read KEY itself: that is no use by another assignment.
    if (name != assigning_) result_.referenced.insert(name);
    auto it = result_.variables.find(name);
    if (it != result_.variables.end()) return it->second;
    return bash_variable(name).value_or(std::string());
  }
  bool is_set(const std::string& name) const {
    return result_.variables.count(name) != 0 || bash_variable(name).has_value();
  }

  // $NAME / ${NAME} of a variable set nowhere: the tutorial's autotrain.sh sources the file under
  // `set -u`, where this is an error ("unbound variable"), and it is almost always a typo
  // (${PROJECTID}) that would otherwise turn a path into "finetune-" without a word.
  void require_set(const std::string& name, size_t dollar) {
    if (is_set(name)) return;
    if (is_bash_own_variable(name))
      fail(dollar,
           fmt::format("{} is a variable bash sets itself, which a config file cannot read here (of those, "
                       "HOSTNAME, UID, EUID and PWD are given)",
                       name),
           fmt::format("write the value of {} literally, or export it in the shell", name));
    fail(dollar,
         fmt::format("{} is not set (not assigned above, not in the environment); the tutorial's autotrain.sh "
                     "sources this file under `set -u`, which stops here too",
                     name),
         fmt::format("assign {0} above this line or export it; write ${{{0}:-}} if empty is meant", name));
  }

  void assign(const std::string& name, std::string value, size_t at) {
    result_.variables[name] = std::move(value);
    if (!result_.assigned_at.count(name)) result_.assigned_names.push_back(name);
    result_.assigned_at[name] = location(at);
  }

  // --- commands -----------------------------------------------------------------------------
  void parse_line() {
    bool is_export = false;
    bool first_word = true;
    bool command_has_words = false;
    for (;;) {
      skip_blanks();
      if (at_end()) return;
      char c = peek();
      if (c == '\n') {
        ++pos_;
        return;
      }
      if (c == '#') {  // a comment starts only at the beginning of a word
        skip_rest_of_line();
        return;
      }
      if (c == ';') {
        if (!command_has_words)
          fail(pos_, "syntax error near unexpected token ';'", "remove the stray ';'");
        ++pos_;
        is_export = false;
        first_word = true;
        command_has_words = false;
        continue;
      }
      if (is_operator(c))
        fail(pos_, fmt::format("shell operator '{}' is not supported in a config file", c),
             "config files hold only KEY=value assignments; quote the value if the character belongs to it");
      parse_word_in_command(first_word, is_export);
      first_word = false;
      command_has_words = true;
    }
  }

  void parse_word_in_command(bool first_word, bool& is_export) {
    size_t word_start = pos_;
    if (first_word && src_.substr(pos_, 6) == "export" && word_ends_at(pos_ + 6)) {
      pos_ += 6;
      is_export = true;
      skip_blanks();
      if (peek() == '-')
        fail(pos_, "options of 'export' are not supported", "write 'export KEY=value' or 'KEY=value'");
      return;
    }
    std::string name = read_name();
    bool append = false;
    if (!name.empty() && peek() == '+' && peek(1) == '=') {
      append = true;
      ++pos_;
    }
    if (!name.empty() && peek() == '=') {
      ++pos_;
      // From here to the end of the line (or of a multi-line value), diagnostics hide the text.
      if (is_secret_name(name)) secret_from_ = pos_;
      assigning_ = name;
      std::string value = parse_value_word();
      if (append) value = lookup(name) + value;
      assigning_.clear();
      assign(name, std::move(value), word_start);
      return;
    }
    // `KEY = v` (or `export KEY = v`): in a shell this would run KEY as a command.
    size_t probe = pos_;
    while (probe < src_.size() && is_blank(src_[probe])) ++probe;
    if (!name.empty() && probe > pos_ && probe < src_.size() && src_[probe] == '=')
      fail(word_start, fmt::format("'{} =' has a space before '='; a shell would run '{}' as a command", name, name),
           fmt::format("write {}=value with no spaces around '='", name));
    if (!name.empty() && is_export && (word_ends_at(pos_) || peek() == '#')) {
      return;  // `export KEY`: marks KEY for export; `set -a` already exports everything
    }
    // Not an assignment: in a shell this would run a command.
    size_t end = word_start;
    while (end < src_.size() && !is_blank(src_[end]) && src_[end] != '\n' && src_[end] != ';') ++end;
    std::string word(src_.substr(word_start, end - word_start));
    // A word that may be part of a token is not shown: the message points at it (the caret, the
    // column) and says why it is hidden, so the line can still be fixed.
    const bool hidden = quoted(word_start, word) == "'***'";
    const std::string named = hidden ? "the word at the caret (hidden: this line holds a token)" : quoted(word_start, word);
    if (first_word || is_export)
      fail(word_start,
           fmt::format("{} is not an assignment; a shell would run it as a command, which a config file must not do",
                       named),
           "config files hold only KEY=value lines (optionally 'export KEY=value'); quote values that contain spaces");
    fail(word_start,
         hidden ? fmt::format("{} follows an assignment; a shell would run it as a command", named)
                : fmt::format("unexpected word {} after an assignment; a shell would run it as a command", named),
         hidden ? "a token has no spaces: remove what follows it, or quote the value, e.g. HF_TOKEN=\"hf_...\""
                : "quote the value if the space belongs to it, e.g. KEY=\"two words\"");
  }

  // --- words ------------------------------------------------------------------------------
  // The value of an assignment: up to an unquoted blank, newline or ';'.
  std::string parse_value_word() {
    std::string out;
    bool tilde_ok = true;
    while (!at_end()) {
      char c = peek();
      if (is_blank(c) || c == '\n' || c == ';') break;
      if (is_operator(c))
        fail(pos_, fmt::format("unquoted '{}' is a shell operator", c),
             "put the value in quotes, e.g. KEY=\"a|b\"");
      bool was_colon = c == ':';
      if (c == '~' && tilde_ok) {
        expand_tilde(out);
      } else {
        parse_word_char(out, /*eval=*/true, /*in_dquote=*/false, /*in_brace=*/false);
      }
      tilde_ok = was_colon;  // assignments also expand a tilde after ':' (PATH-like values)
    }
    return out;
  }

  // One unit of an unquoted word: quotes, escapes, expansions, or a literal character.
  void parse_word_char(std::string& out, bool eval, bool in_dquote, bool in_brace) {
    char c = peek();
    switch (c) {
      case '\'':
        if (in_dquote) {
          out += c;
          ++pos_;
        } else {
          parse_single_quoted(out);
        }
        return;
      case '"':
        parse_double_quoted(out, eval);
        return;
      case '\\':
        if (peek(1) == '\n') {
          pos_ += 2;  // line continuation
        } else if (pos_ + 1 >= src_.size()) {
          out += '\\';
          ++pos_;
        } else if (in_dquote && !(peek(1) == '$' || peek(1) == '`' || peek(1) == '"' || peek(1) == '\\' ||
                                  (in_brace && peek(1) == '}'))) {
          out += '\\';
          ++pos_;
        } else {
          out += peek(1);
          pos_ += 2;
        }
        return;
      case '$':
        expand_dollar(out, eval, in_dquote);
        return;
      case '`':
        fail(pos_, "command substitution with backticks is not supported (config files are parsed, never executed)",
             "write the value literally");
      default:
        out += c;
        ++pos_;
    }
  }

  void parse_single_quoted(std::string& out) {
    size_t open = pos_++;
    size_t close = src_.find('\'', pos_);
    if (close == std::string_view::npos)
      fail(open, "unterminated single quote", "add the closing ' (quoted values may span lines, so the rest of the file was read as part of this value)",
           /*fatal=*/true);
    out.append(src_.substr(pos_, close - pos_));
    pos_ = close + 1;
  }

  void parse_double_quoted(std::string& out, bool eval) {
    size_t open = pos_++;
    for (;;) {
      if (at_end())
        fail(open, "unterminated double quote", "add the closing \" (quoted values may span lines, so the rest of the file was read as part of this value)",
             /*fatal=*/true);
      char c = peek();
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c == '\\') {
        char n = peek(1);
        if (n == '\n') {
          pos_ += 2;
        } else if (n == '$' || n == '`' || n == '"' || n == '\\') {
          out += n;
          pos_ += 2;
        } else {
          out += '\\';
          ++pos_;
        }
        continue;
      }
      if (c == '$') {
        expand_dollar(out, eval, /*in_dquote=*/true);
        continue;
      }
      if (c == '`')
        fail(pos_, "command substitution with backticks is not supported (config files are parsed, never executed)",
             "write the value literally, or escape it as \\`");
      out += c;
      ++pos_;
    }
  }

  void expand_tilde(std::string& out) {
    size_t start = pos_;
    size_t end = start + 1;
    while (end < src_.size() && src_[end] != '/' && src_[end] != ':' && !is_blank(src_[end]) &&
           src_[end] != '\n' && src_[end] != ';' && src_[end] != '}')
      ++end;
    if (end != start + 1)
      fail(start, fmt::format("tilde expansion {} is not supported", quoted(start, src_.substr(start, end - start))),
           "write the path out in full, or use ~ alone for $HOME");
    // As bash: $HOME, or, when HOME is unset (cron, `env -i`), the user's home from the password
    // database; never "" (which would put ~/x at /x).
    if (is_set("HOME")) {
      out += lookup("HOME");
    } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) {
      out += pw->pw_dir;
    }
    ++pos_;
  }

  // At '$': parameter expansion, or the literal '$' where bash keeps it.
  void expand_dollar(std::string& out, bool eval, bool in_dquote) {
    size_t dollar = pos_;
    char n = peek(1);
    if (n == '{') {
      expand_braced(out, eval, in_dquote);
      return;
    }
    if (n == '(') {
      if (peek(2) == '(')
        fail(dollar, "arithmetic expansion $((...)) is not supported (config files are parsed, never executed)",
             "write the computed number literally");
      fail(dollar, "command substitution $(...) is not supported (config files are parsed, never executed)",
           "write the value literally");
    }
    if (n == '[') fail(dollar, "arithmetic expansion $[...] is not supported", "write the computed number literally");
    if (is_name_start(n)) {
      ++pos_;
      std::string name = read_name();
      if (eval) {
        require_set(name, dollar);
        append_expansion(out, lookup(name), dollar);
      }
      return;
    }
    if ((n >= '0' && n <= '9') || n == '@' || n == '*' || n == '#' || n == '?' || n == '$' || n == '!' || n == '-')
      fail(dollar, fmt::format("special parameter '${}' is not supported in a config file", n),
           "use a named variable, e.g. ${PROJECT_ID}");
    if (!in_dquote && n == '\'')
      fail(dollar, "ANSI-C quoting $'...' is not supported", "use '...' or \"...\" quotes");
    if (!in_dquote && n == '"')
      fail(dollar, "locale quoting $\"...\" is not supported", "use plain \"...\" quotes");
    out += '$';  // a '$' not followed by a name stays literal, as in sh
    ++pos_;
  }

  void expand_braced(std::string& out, bool eval, bool in_dquote) {
    size_t dollar = pos_;
    // ${A:-${B:-...}} recurses once per level: a deep enough nest would overflow the stack.
    // No config needs more than a few levels.
    constexpr int kMaxNesting = 200;
    struct Depth {
      int& d;
      explicit Depth(int& depth) : d(++depth) {}
      ~Depth() { --d; }
    } depth(brace_depth_);
    if (brace_depth_ > kMaxNesting)
      fail(dollar, fmt::format("expansions nested more than {} deep", kMaxNesting),
           "write the value with fewer nested ${...:-...} levels", /*fatal=*/true);
    pos_ += 2;
    char c = peek();
    if (c == '#' || c == '!')
      fail(dollar, fmt::format("'${{{}...}}' is not supported; only ${{VAR}}, ${{VAR:-word}}, ${{VAR-word}}, ${{VAR:=word}} and ${{VAR=word}} are", c),
           "write the value literally");
    if ((c >= '0' && c <= '9') || c == '@' || c == '*' || c == '?' || c == '$' || c == '-')
      fail(dollar, fmt::format("special parameter '${{{}}}' is not supported in a config file", c),
           "use a named variable");
    std::string name = read_name();
    if (name.empty())
      fail(dollar, "bad substitution: expected a variable name after '${'", "write ${NAME} with NAME made of letters, digits and _");
    c = peek();
    if (c == '}') {
      ++pos_;
      if (eval) {
        require_set(name, dollar);
        append_expansion(out, lookup(name), dollar);
      }
      return;
    }
    bool colon = false;
    if (c == ':' && (peek(1) == '-' || peek(1) == '=')) {
      colon = true;
      ++pos_;
      c = peek();
    }
    if (c != '-' && c != '=') {
      size_t end = pos_;
      while (end < src_.size() && end < pos_ + 3 && src_[end] != '}' && src_[end] != '\n') ++end;
      fail(pos_,
           fmt::format("parameter operator '{}' in '${{{}...}}' is not supported; only ${{VAR}}, ${{VAR:-word}}, ${{VAR-word}}, ${{VAR:=word}} and ${{VAR=word}} are",
                       src_.substr(pos_, std::max<size_t>(end - pos_, 1)), name),
           "write the value literally");
    }
    bool assign_default = c == '=';
    ++pos_;
    // The word is expanded only when it is used, as in bash: a nested ${X:=v} in an unused
    // default must not assign X.
    bool use_word = colon ? lookup(name).empty() : !is_set(name);
    // bash expands a tilde after ':' in the word of ${VAR:-w} / ${VAR-w} (an assignment's
    // context), but not in that of ${VAR:=w} / ${VAR=w}.
    std::string word = parse_brace_word(dollar, eval && use_word, in_dquote, /*colon_tilde=*/!assign_default);
    if (!eval) return;
    if (use_word) {
      if (assign_default) assign(name, word, dollar);
      append_expansion(out, word, dollar);
    } else {
      append_expansion(out, lookup(name), dollar);
    }
  }

  // The word of ${VAR:-word}: up to the matching '}', quotes and expansions nested. A tilde
  // is expanded at its start and, with `colon_tilde`, after an unquoted ':' (never in "...").
  std::string parse_brace_word(size_t open, bool eval, bool in_dquote, bool colon_tilde) {
    std::string word;
    bool tilde_ok = !in_dquote;
    for (;;) {
      if (at_end())
        fail(open, "unterminated '${': missing '}'", "close the expansion with '}'", /*fatal=*/true);
      char c = peek();
      if (c == '}') {
        ++pos_;
        return word;
      }
      if (c == '~' && tilde_ok) {
        expand_tilde(word);
      } else {
        parse_word_char(word, eval, in_dquote, /*in_brace=*/true);
      }
      tilde_ok = colon_tilde && !in_dquote && c == ':';
    }
  }

  std::string_view src_;
  std::string file_;
  size_t pos_ = 0;
  std::vector<size_t> line_starts_;
  EnvFileResult result_;
  std::vector<Diagnostic> errors_;
  size_t secret_from_ = std::string_view::npos;  // where the value of an HF_TOKEN being read began
  int brace_depth_ = 0;                           // ${ levels being parsed (see expand_braced)
};

}  // namespace

namespace {
// A problem of the whole file (or of its opening), at the start of a line. Built member by
// member: GCC 12 at -O3 warns (falsely) about uninitialised strings in the nested
// brace-initialised form.
Diagnostic file_diagnostic(const std::string& filename, int line, int column, std::string message, std::string hint) {
  Diagnostic d;
  d.where.file = filename;
  d.where.line = line;
  d.where.column = column;
  d.message = std::move(message);
  d.hint = std::move(hint);
  return d;
}
}  // namespace

EnvFileResult parse_env_file(std::string_view text, const std::string& filename, Environment environment) {
  // Normalise what editors on other systems leave behind, as a warning rather than an error:
  // bash itself would choke on CRLF (the \r ends up in every value), which is never intended.
  std::vector<Diagnostic> warnings;
  std::string normalised;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    text.remove_prefix(3);
    warnings.push_back(file_diagnostic(filename, 1, 1, "file starts with a UTF-8 byte-order mark; ignored", "save the file without a BOM"));
  }
  if (text.find("\r\n") != std::string_view::npos) {
    int line = 1;
    int first_crlf_line = 0;
    normalised.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        if (!first_crlf_line) first_crlf_line = line;
        continue;
      }
      if (text[i] == '\n') ++line;
      normalised += text[i];
    }
    text = normalised;
    warnings.push_back(file_diagnostic(filename, first_crlf_line, 1,
                                       "file has Windows (CRLF) line ends; read as LF (bash would keep the \\r in every value)",
                                       "convert it with dos2unix"));
  }
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) {
    int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n'));
    throw EnvFileError({file_diagnostic(filename, line, 1, "file contains a NUL byte; it is not a text file",
                                        "check that the right file was given")});
  }
  Evaluator evaluator(text, filename, std::move(environment));
  EnvFileResult result = evaluator.run();
  result.warnings.insert(result.warnings.begin(), warnings.begin(), warnings.end());
  return result;
}

EnvFileResult load_env_file(const std::string& path, Environment environment) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw EnvFileError({file_diagnostic(path, 0, 0, "is a folder, not a config file",
                                        "pass the .env file itself with -c/--config (e.g. -c configs/tiny.env)")});
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw EnvFileError({file_diagnostic(path, 0, 0, "cannot open config file",
                                        "check the path given with -c/--config or $AUTOTRAIN_CONFIG")});
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_env_file(buffer.str(), path, std::move(environment));
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

}  // namespace autotrain::config
