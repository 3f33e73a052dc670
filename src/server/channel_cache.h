// placeholder; implemented in a following commit (ChannelCache)
#ifndef AIRLOCK_SERVER_CHANNEL_CACHE_H_
#define AIRLOCK_SERVER_CHANNEL_CACHE_H_
#endif  // AIRLOCK_SERVER_CHANNEL_CACHE_H_
