// Falcon's config.json in both spellings (spec §1.1): the in-library keys of transformers'
// FalconConfig and the legacy "RefinedWeb" ones (n_head, n_layer, n_head_kv, n_embed,
// model_type RefinedWeb / RefinedWebModel). No LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace autotrain::model {

// A model folder or config the program cannot use; the message says what, where and how to fix.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The model is nowhere to be found (not a folder, not in the Hugging Face cache): not yet
// downloaded, as opposed to there and broken. `data` can still write DATA_FILE without it.
class ModelNotFoundError : public ModelError {
 public:
  using ModelError::ModelError;
};

struct FalconConfig {
  int64_t vocab_size = 65024;
  int64_t hidden_size = 4544;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 71;
  int64_t num_kv_heads = 71;  // as configured; see kv_heads() for the count the model uses
  bool new_decoder_architecture = false;
  bool multi_query = true;
  bool parallel_attn = true;
  bool bias = false;
  bool alibi = false;
  int num_ln_in_parallel_attn = 1;  // 2 = separate ln_attn / ln_mlp (new decoder default)
  double layer_norm_epsilon = 1e-5;
  double initializer_range = 0.02;  // std of the normal init (random_falcon), as transformers uses it
  double rope_theta = 10000.0;
  // Dropout transformers applies in training (both 0 in every released Falcon config); this
  // implementation does not apply them, and `train` says so when they are set.
  double hidden_dropout = 0.0;
  double attention_dropout = 0.0;
  int64_t max_position_embeddings = 2048;
  int64_t ffn_hidden_size = 4 * 4544;
  bool tie_word_embeddings = true;
  std::optional<int64_t> bos_token_id = 11;
  std::optional<int64_t> eos_token_id = 11;
  std::string torch_dtype;  // as stored ("bfloat16", ...), empty when absent
  // What config.json's quantization_config says of the stored weights ("bitsandbytes 4-bit",
  // "bitsandbytes 8-bit", "gptq", ...), empty when it has none.
  std::string quantization;
  std::string model_type = "falcon";

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Key/value heads of the attention: 1 for multi-query, num_kv_heads for the new decoder
  // (grouped), num_attention_heads for classic multi-head attention.
  int64_t kv_heads() const;
  // Rows of query_key_value.weight.
  int64_t qkv_out_features() const;
  // True when the layers have ln_attn/ln_mlp rather than input_layernorm.
  bool two_layer_norms() const { return new_decoder_architecture && num_ln_in_parallel_attn == 2; }

  // Parses and validates; `where` names the file in messages. Throws ModelError.
  static FalconConfig from_json(const nlohmann::json& j, std::string_view where);
  static FalconConfig load(const std::filesystem::path& config_json);
};

}  // namespace autotrain::model
