#include "common/flat_json.h"

#include <exception>

namespace airlock {

// nlohmann's SAX events for one flat object; any event outside that shape returns false, which
// stops the parse (nlohmann::json::sax_parse then returns false).
class FlatJsonObject::Sax {
 public:
  explicit Sax(FlatJsonObject* out) : out_(out) {}

  bool null() { return Scalar(nullptr); }
  bool boolean(bool value) { return Scalar(value); }
  bool number_integer(nlohmann::json::number_integer_t value) { return Scalar(value); }
  bool number_unsigned(nlohmann::json::number_unsigned_t value) { return Scalar(value); }
  bool number_float(nlohmann::json::number_float_t value, const std::string&) { return Scalar(value); }
  bool string(std::string& value) {
    if (!TakeValue()) return false;
    Value& v = out_->members_[out_->size_ - 1].value;
    v.is_string_ = true;
    v.string_.assign(value);
    v.scalar_ = nullptr;
    return true;
  }
  bool binary(nlohmann::json::binary_t&) { return false; }

  bool start_object(size_t) {
    if (state_ != State::kBefore) return false;  // a nested object, or a second top-level value
    state_ = State::kKey;
    return true;
  }
  bool key(std::string& key) {
    if (state_ != State::kKey || out_->size_ >= kMaxMembers) return false;
    for (size_t i = 0; i < out_->size_; ++i) {
      if (out_->members_[i].key == key) return false;  // a repeated key: ParseJson decides
    }
    if (out_->members_.size() == out_->size_) out_->members_.emplace_back();
    out_->members_[out_->size_++].key.assign(key);
    state_ = State::kValue;
    return true;
  }
  bool end_object() {
    if (state_ != State::kKey) return false;
    state_ = State::kDone;
    return true;
  }
  bool start_array(size_t) { return false; }
  bool end_array() { return false; }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  enum class State { kBefore, kKey, kValue, kDone };

  bool TakeValue() {
    if (state_ != State::kValue) return false;  // a top-level scalar
    state_ = State::kKey;
    return true;
  }
  bool Scalar(nlohmann::json value) {
    if (!TakeValue()) return false;
    Value& v = out_->members_[out_->size_ - 1].value;
    v.is_string_ = false;
    v.scalar_ = std::move(value);
    return true;
  }

  FlatJsonObject* out_;
  State state_ = State::kBefore;
};

bool FlatJsonObject::Parse(std::string_view text, size_t max_size) {
  size_ = 0;
  if (text.size() > max_size) return false;
  Sax sax(this);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &sax,
                                   nlohmann::json::input_format_t::json, /*strict=*/true,
                                   /*ignore_comments=*/false);
  } catch (const std::exception&) {
    ok = false;  // whatever it was, ParseJson on the same text gives the answer
  }
  if (!ok) size_ = 0;
  return ok;
}

const FlatJsonObject::Value* FlatJsonObject::find(std::string_view key) const {
  for (size_t i = 0; i < size_; ++i) {
    if (members_[i].key == key) return &members_[i].value;
  }
  return nullptr;
}

}  // namespace airlock
