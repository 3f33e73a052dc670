#include "common/flat_json.h"

#include <cstring>
#include <exception>

// SSE2 is part of x86-64: RapidJSON then skips whitespace and scans strings 16 bytes at a time.
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/reader.h>
#include <rapidjson/stream.h>

namespace airlock {

// RapidJSON's SAX events for one flat object. Every event outside the accepted subset returns
// false, which stops the parse. The subset is where RapidJSON (with encoding validation) and
// nlohmann agree byte for byte: strings without \u escapes (RapidJSON 1.1 lets a lone low
// surrogate through; nlohmann refuses it), true, false and null. Numbers are refused (the two
// libraries sort integers into types differently), as are nested values and repeated keys.
class FlatJsonObject::Sax {
 public:
  using Ch = char;
  using SizeType = rapidjson::SizeType;

  explicit Sax(FlatJsonObject* out) : out_(out) {}

  bool Null() { return Scalar(nullptr); }
  bool Bool(bool value) { return Scalar(value); }
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const Ch*, SizeType, bool) { return false; }
  bool String(const Ch* text, SizeType length, bool) {
    if (!TakeValue()) return false;
    Value& v = out_->members_[out_->size_ - 1].value;
    v.is_string_ = true;
    v.string_.assign(text, length);
    v.scalar_ = nullptr;
    return true;
  }
  bool StartObject() {
    if (state_ != State::kBefore) return false;  // a nested object
    state_ = State::kKey;
    return true;
  }
  bool Key(const Ch* text, SizeType length, bool) {
    if (state_ != State::kKey || out_->size_ >= kMaxMembers) return false;
    const std::string_view key(text, length);
    for (size_t i = 0; i < out_->size_; ++i) {
      if (out_->members_[i].key == key) return false;  // a repeated key: ParseJson decides
    }
    if (out_->members_.size() == out_->size_) out_->members_.emplace_back();
    out_->members_[out_->size_++].key.assign(key);
    state_ = State::kValue;
    return true;
  }
  bool EndObject(SizeType) {
    if (state_ != State::kKey) return false;
    state_ = State::kDone;
    return true;
  }
  bool StartArray() { return false; }
  bool EndArray(SizeType) { return false; }

  bool done() const { return state_ == State::kDone; }

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

namespace {

bool IsAscii(std::string_view text) {
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if ((word & 0x8080808080808080ull) != 0) return false;
  }
  for (; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) >= 0x80) return false;
  }
  return true;
}

}  // namespace

bool FlatJsonObject::Parse(std::string_view text, size_t max_size) {
  size_ = 0;
  if (text.size() > max_size) return false;
  // RapidJSON reads a NUL byte as the end of the text (nlohmann refuses the byte),
  // and \u escapes are outside the subset (see Sax): leave both to ParseJson.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return false;
  // RapidJSON 1.1.0's SSE2 string scan compares against 0x19 instead of 0x1f, so an unescaped
  // 0x1a..0x1f inside a string is accepted when it falls in a 16-byte block of the scan (found by
  // fuzz/flat_json_fuzz). Those bytes are invalid anywhere in JSON: leave them to ParseJson.
  for (char c : text) {
    if (static_cast<unsigned char>(c) - 0x1au <= 0x1fu - 0x1au) return false;
  }
  for (size_t i = text.find('\\'); i != std::string_view::npos; i = text.find('\\', i + 2)) {
    if (i + 1 >= text.size() || text[i + 1] == 'u') return false;
  }
  Sax sax(this);
  bool ok = false;
  try {
    // Parsed in place in a NUL-terminated copy (capacity kept across parses); NUL bytes in the
    // text were refused above, so the terminator is the end.
    // RapidJSON's SSE2 scans load aligned 16-byte blocks and may read up to 15 bytes past the
    // terminator: the capacity keeps those bytes inside the allocation (AddressSanitizer found
    // the read past a 31-byte buffer).
    buffer_.reserve(text.size() + 16);
    buffer_.assign(text.data(), text.size());
    rapidjson::InsituStringStream stream(buffer_.data());
    rapidjson::Reader reader;
    // Strict RFC 8259 (no comments, trailing commas, NaN; one value then only whitespace). UTF-8 is
    // validated only when there is a byte above 0x7f (validation is most of RapidJSON's time, and
    // ASCII text is valid UTF-8).
    if (IsAscii(text)) {
      ok = !reader.Parse<rapidjson::kParseInsituFlag>(stream, sax).IsError();
    } else {
      ok = !reader
                .Parse<rapidjson::kParseInsituFlag | rapidjson::kParseValidateEncodingFlag>(stream,
                                                                                            sax)
                .IsError();
    }
    ok = ok && sax.done();
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
