/* AIRLOCK_EXPORT marks the symbols libairlock-client exports. The library is built with hidden
   visibility, so nothing else is visible to an app. Usable from C and C++. */
#ifndef AIRLOCK_EXPORT_H_
#define AIRLOCK_EXPORT_H_

#if defined(AIRLOCK_BUILDING_LIBRARY)
#define AIRLOCK_EXPORT __attribute__((visibility("default")))
#else
#define AIRLOCK_EXPORT
#endif

#endif /* AIRLOCK_EXPORT_H_ */
