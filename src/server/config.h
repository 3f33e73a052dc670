// placeholder; implemented in a following commit (TOML config)
#ifndef AIRLOCK_SERVER_CONFIG_H_
#define AIRLOCK_SERVER_CONFIG_H_
#endif  // AIRLOCK_SERVER_CONFIG_H_
