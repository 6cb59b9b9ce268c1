/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Provisioning glue (issue 11): the `mqtts` shell command table, the settings calls (subtree
 * `mqtts`, one core `store` record per key), the MCU unique ID, the MAC address call and the
 * reboot. Thin: every decision is Rust's (src/provision.rs, mqtts_core::{shell,options,store}).
 *
 * Results: 0 or a count on success, negative errno from Zephyr on failure (logged by Rust as a
 * number only; nothing here is decoded further).
 */

#ifndef MQTTS_PROVISION_SHIM_H_
#define MQTTS_PROVISION_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* settings_subsys_init(); call once before the others. */
int mqtts_prov_settings_init(void);
/* Appends the value of every `mqtts/<key>` setting (each a core store record) to buf; the
 * total length goes to *out_len. A value that does not fit is skipped and counted in the
 * return value (number of skipped values, >= 0), so Rust can report it; a value that cannot
 * be read makes it -EIO. */
int mqtts_prov_load(uint8_t *buf, size_t cap, size_t *out_len);
/* settings_save_one("mqtts/<key>", record, len). */
int mqtts_prov_save(const uint8_t *key, size_t key_len, const uint8_t *record, size_t len);
/* settings_delete("mqtts/<key>"). */
int mqtts_prov_delete(const uint8_t *key, size_t key_len);
/* The apply journal, one setting `mqapply` holding a whole change set (concatenated store
 * records): settings_save_one / load (as mqtts_prov_load) / settings_delete. */
int mqtts_prov_journal_save(const uint8_t *data, size_t len);
int mqtts_prov_journal_load(uint8_t *buf, size_t cap, size_t *out_len);
int mqtts_prov_journal_delete(void);
/* Deletes the journal and every setting under `mqtts/`; returns how many settings, or a
 * negative errno. */
int mqtts_prov_factory_reset(void);
/* hwinfo_get_device_id(): bytes written (> 0) or a negative errno. */
int mqtts_prov_unique_id(uint8_t *buf, size_t cap);
/* Sets the MAC of the default interface: down, NET_REQUEST_ETHERNET_SET_MAC_ADDRESS, up. */
int mqtts_prov_set_mac(const uint8_t *mac6);
/* 1 when the devicetree fixes the MAC (local-mac-address) or there is no W5500, else 0. */
int mqtts_prov_mac_fixed(void);
/* Prints one line on the shell `sh` (the pointer the command handler was given). */
void mqtts_prov_print(const void *sh, const uint8_t *text, size_t len);
/* Starts reading one line from `sh` without echo (shell bypass); when Enter arrives, Rust's
 * mqtts_prov_secret_line() gets the key and the line, and the line buffer is wiped. */
int mqtts_prov_read_secret(const void *sh, const uint8_t *key, size_t key_len);
/* sys_reboot(SYS_REBOOT_COLD): does not return. */
void mqtts_prov_reboot(void);

/* Implemented in Rust (src/provision.rs). `words` are argv[1..] of `mqtts ...`. */
extern void mqtts_prov_command(const void *sh, size_t count, const char *const *words);
extern void mqtts_prov_secret_line(const void *sh, const uint8_t *key, size_t key_len,
				   const uint8_t *line, size_t line_len);

#ifdef __cplusplus
}
#endif

#endif /* MQTTS_PROVISION_SHIM_H_ */
