// Fixed test keys of the fuzz targets (copied from fuzz/corpus/key_file_fuzz/), so that seed inputs
// made under them stay valid from run to run. Test keys only: they protect nothing.
#ifndef AIRLOCK_FUZZ_FUZZ_KEYS_H_
#define AIRLOCK_FUZZ_FUZZ_KEYS_H_

#include <cstdint>

namespace airlock::fuzz {

// The AEAD stream key and associated data of aead_wrap_fuzz (also the wrap's aad).
inline constexpr uint8_t kKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                     23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
inline constexpr uint8_t kAad[] = {'a', 'i', 'r', 'l', 'o', 'c', 'k'};

inline constexpr char kX25519KeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VuBCIEIIj2qzydFpyNqqHOvwSVAaIRGehIVjnNcBCzBkFeyhx9
-----END PRIVATE KEY-----)";

inline constexpr char kRsa2048KeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDl2q/wGuLl9gp4
yJChKYY8TdmUs0EKHPsuPXc8Z5clWfhBvZUeOMfG6UPUmDDgKbRe0jedOPBufdq2
PF/RrVD5/OglRqVcfq5Nzlw6FisJyYLbW7btXjzb3jxACWSx+duHWFaIHMy0yCcX
TRrVbQuz9fxeWP7E2gSdOuaS9tzfwWxyCwqOTsURkt3e2V9Ivhzgfh6tM/W4A/wN
4JcXqLXU3JqgMw3CNNv0tg8WxF3LHJK15OmACDjEC29fIuz9b7Q38a7rLUDboHXE
Pm8q3rJiN40x3zhR/iEjk4vZhgeaahxfHkroel98Fi+O0/v+xFDm7e108KR72gVu
3Ih8F2sTAgMBAAECggEAWKBVRVHAmiWfzQmchp+htB/aXNUvJ0ycZyxpDL/ujgbe
S87jL+d51E7+CftyoQRDmWoZ6oPZZOkfCzRFR+45cmKbSkAuo3bvE24Vron8p0Xt
MFJxOp4i/i328kQM8PjjthCQMORV5ADm3burtI5avFWFLQXImjNsIwnifNk1ugo6
CXRDsermnG+EOZO69vrAAOuOsRIDtyHjORVGDw2krWYlodjOzyNJmVLILhX6kgOK
LoKhM6wHsk1xYWDzfCf6s4uL+FZMHmxAvg/UqV8cXhubI7Rrn+8HCvRueKAKF+rh
JPfWADGlhv7/hX9Igwa2+b0o/1sZU234DUBDJUtsYQKBgQD0nOPKE7zzy0YxrpZd
PJ9Dq0f99Dx5drfLFTcGxORXkUiwDzJcYzR4NFdVkdlN0+QX2t2yoXzLZi5YeFKo
7wB8NX7QmScHniZgyDKoqaGa02l3GDhWxX/zQdQsoERwMhJD5vtKyO1F26B4rxkt
OCB3Zwz1FZ8CHcQNO6G7T5NiIQKBgQDwjepmVzzMsng/ottMdgASQKsytqju8wau
Kv3+CVT86/5rw7KiL4Mw4jVDrywQo7TSv/NTUEKqBXnkWIDCwta/LKAwOVU2vFDQ
AYF5AJMpKbXLlcip9SMozSl7jHxRQeMOpS2scANzaNOKXUcLB96xvJTDlfAk0Px7
DBN5iywOswKBgQCwgNiZAp8QJzgyNzEGe+zLzja3V1mfp3s9TcST3NSLHykc6QpE
wcylg9cUxpXPY7qtP99CuuWqesOsUL4MadCmz47/A9O22nYE1dBABY63gh8SsWZN
rlsB8xkfTlGzx12Io43ly4/yHWTwUCBRkbNTlQczfXNr+oBxr/qmhufpIQKBgQDY
wihLG6TPlqnAPdF57oJV8CvTwMAswJRucJL6TBJm7YgONwNKHaILdGommTwNqlYP
6aMqmZHYfqK9Xfp4hPTYwy99BMyCS+JN7G1sSVZRqyIDVu7AJwINjAErMQX8enBN
DA5B6ZVSc0zayv5vNCI46gLq0rrXkfFQNyt9RCjo/QKBgGV+01us5Wg0+ju3WuzS
Lb7iH0wCXKkOpDLtnOBlV6d5JmBD04sfPDSNQKhWGrFEfTVa6KSZIK9e2JezLZnY
naFhYcXWpI+f4+D+mmztRl+a1wZ6m+yv/Q1xdJ2PODpflDZNUhJ+nfFqoHbI6HyG
WwiEa++IFeV5ElJJaCuHHs8T
-----END PRIVATE KEY-----)";

inline constexpr char kEd25519KeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIE6iaqHZ7v2NrODw92VUB/2MmmPmaaTDZzj4WwFCz+Hk
-----END PRIVATE KEY-----)";

}  // namespace airlock::fuzz

#endif  // AIRLOCK_FUZZ_FUZZ_KEYS_H_
