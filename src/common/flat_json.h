// A fast path for small request bodies that are one JSON object of string, boolean and null members
// — the shape of every device check-in (/v1/check, Capgo /updates).
//
// FlatJsonObject::Parse reads the text with RapidJSON's SAX reader (strict RFC 8259, UTF-8
// validated; several times faster than nlohmann's lexer on these bodies) into storage that is
// reused from one parse to the next (one object per thread), so a check-in builds no DOM and, once
// warm, allocates almost nothing. It accepts only a subset on which RapidJSON and nlohmann agree
// and never answers differently from ParseJson: anything else (not an object, a nested object or
// array, a number, a \u escape, a NUL byte, a repeated key, more than kMaxMembers members, a parse
// error, more than max_size bytes) makes Parse return false, and the caller then parses the same
// text with ParseJson, whose value or exact error is the answer. For text Parse accepts, every
// member reads as it would from the nlohmann::json that ParseJson returns (same type, same value);
// flat_json_test checks this on fixed cases and on thousands of mutated bodies.
//
// Member access mimics the part of nlohmann::json that field readers use (find/end, is_string,
// get_ref<const std::string&>, ...), so readers can be written once as templates over both.
#ifndef AIRLOCK_COMMON_FLAT_JSON_H_
#define AIRLOCK_COMMON_FLAT_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock {

class FlatJsonObject {
 public:
  static constexpr size_t kMaxMembers = 64;

  // One member's value: a string, or true/false/null held as a nlohmann::json (no allocation).
  class Value {
   public:
    bool is_null() const { return !is_string_ && scalar_.is_null(); }
    bool is_string() const { return is_string_; }
    bool is_boolean() const { return !is_string_ && scalar_.is_boolean(); }
    bool is_number() const { return !is_string_ && scalar_.is_number(); }
    bool is_number_integer() const { return !is_string_ && scalar_.is_number_integer(); }
    bool is_number_unsigned() const { return !is_string_ && scalar_.is_number_unsigned(); }
    bool is_number_float() const { return !is_string_ && scalar_.is_number_float(); }
    bool is_object() const { return false; }
    bool is_array() const { return false; }

    // Only `const std::string&`, valid while is_string().
    template <typename T>
    T get_ref() const {
      static_assert(std::is_same_v<T, const std::string&>, "FlatJsonObject holds only std::string");
      return string_;
    }
    // bool (or any type nlohmann::json::get<T>() gives for a boolean or null; callers check the
    // type first).
    template <typename T>
    T get() const {
      if constexpr (std::is_same_v<T, std::string>) {
        return string_;
      } else {
        return scalar_.get<T>();
      }
    }

   private:
    friend class FlatJsonObject;
    bool is_string_ = false;
    std::string string_;
    nlohmann::json scalar_;
  };

  // True when `text` (at most max_size bytes) is a JSON object of scalar members; see above.
  bool Parse(std::string_view text, size_t max_size);

  // nullptr (== end()) when absent.
  const Value* find(std::string_view key) const;
  const Value* end() const { return nullptr; }
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  bool is_object() const { return true; }
  size_t size() const { return size_; }

 private:
  struct Member {
    std::string key;
    Value value;
  };
  class Sax;

  std::vector<Member> members_;  // the first size_ are this parse's; the rest keep their capacity
  size_t size_ = 0;
  std::string buffer_;  // the text, parsed in place
};

}  // namespace airlock

#endif  // AIRLOCK_COMMON_FLAT_JSON_H_
