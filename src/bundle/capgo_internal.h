// Shared by capgo.cc and capgo_manifest.cc; internal to airlock_bundle.
#ifndef AIRLOCK_BUNDLE_CAPGO_INTERNAL_H_
#define AIRLOCK_BUNDLE_CAPGO_INTERNAL_H_

#include <string_view>

#include "bundle/capgo.h"
#include "common/bytes.h"
#include "common/result.h"

namespace airlock::bundle::capgo::internal {

// A type-1 block from `signer` over `data`, checked to recover under its public key (kWrongKey:
// the private key is not the public key's pair). `what` names the block in the error.
[[nodiscard]] Result<Bytes> SignedBlock(const CapgoSigner& signer, ByteSpan data,
                                        std::string_view what);

}  // namespace airlock::bundle::capgo::internal

#endif  // AIRLOCK_BUNDLE_CAPGO_INTERNAL_H_
