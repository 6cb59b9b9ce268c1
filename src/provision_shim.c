/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * See provision_shim.h. Every Zephyr name used here has a row in docs/firmware-verification.md.
 */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <zephyr/devicetree.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/ethernet.h>
#include <zephyr/net/ethernet_mgmt.h>
#include <zephyr/net/net_if.h>
#include <zephyr/net/net_mgmt.h>
#include <zephyr/settings/settings.h>
#if defined(CONFIG_SHELL)
#include <zephyr/shell/shell.h>
#endif
#include <zephyr/drivers/hwinfo.h>
#include <zephyr/sys/reboot.h>

#include "provision_shim.h"

LOG_MODULE_REGISTER(mqtts_prov, LOG_LEVEL_INF);

#define SUBTREE "mqtts"
/* "mqtts/" + the longest store key (mqtts_core::store::MAX_KEY_LEN = 64) + NUL. */
#define MQTTS_SETTINGS_NAME_MAX (sizeof(SUBTREE) + 64 + 1)
/* Longest secret line (store::MAX_VALUE_LEN = 256). */
#define SECRET_MAX 256

static int make_name(char *out, const uint8_t *key, size_t key_len)
{
	if (key_len == 0 || key_len > 64) {
		return -EINVAL;
	}
	memcpy(out, SUBTREE "/", sizeof(SUBTREE));
	memcpy(out + sizeof(SUBTREE), key, key_len);
	out[sizeof(SUBTREE) + key_len] = '\0';
	return 0;
}

int mqtts_prov_settings_init(void)
{
	return settings_subsys_init();
}

struct load_ctx {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int skipped;
	/* Reads that failed here (the read callback returned an error, e.g. a flash read error or
	 * a data CRC mismatch, or fewer bytes than the value has): reported as -EIO, never as
	 * "too large". What ZMS handles while walking its list never reaches this callback, and
	 * settings_load_subtree_direct() returns 0 whatever the backend did: an entry whose name
	 * or data is missing is skipped (and deleted unless CONFIG_SETTINGS_ZMS_NO_LL_DELETE), and
	 * a list node that cannot be read ends the walk, so the entries after it are not loaded
	 * either and the shim cannot tell (docs/provisioning.md). */
	int failed;
	/* Stop after the first value (the journal is one setting). */
	bool one;
};

/* settings_load_direct_cb: called once per stored `mqtts/...` entry. */
static int load_cb(const char *key, size_t len, settings_read_cb read_cb, void *cb_arg,
		   void *param)
{
	struct load_ctx *ctx = param;
	ssize_t n;

	ARG_UNUSED(key);
	if (len > ctx->cap - ctx->len) {
		ctx->skipped++;
		return ctx->one ? 1 : 0;
	}
	n = read_cb(cb_arg, ctx->buf + ctx->len, len);
	/* Whole values only: a short read would splice part of a record into the buffer. */
	if (n > 0 && (size_t)n == len) {
		ctx->len += len;
	} else {
		ctx->failed++;
	}
	return ctx->one ? 1 : 0;
}

static int load_into(const char *subtree, bool one, uint8_t *buf, size_t cap, size_t *out_len)
{
	struct load_ctx ctx = {.buf = buf, .cap = cap, .len = 0, .skipped = 0, .failed = 0,
			       .one = one};
	int rc = settings_load_subtree_direct(subtree, load_cb, &ctx);

	*out_len = ctx.len;
	if (rc < 0) {
		return rc;
	}
	return ctx.failed > 0 ? -EIO : ctx.skipped;
}

int mqtts_prov_load(uint8_t *buf, size_t cap, size_t *out_len)
{
	return load_into(SUBTREE, false, buf, cap, out_len);
}

int mqtts_prov_save(const uint8_t *key, size_t key_len, const uint8_t *record, size_t len)
{
	char name[MQTTS_SETTINGS_NAME_MAX];
	int rc = make_name(name, key, key_len);

	return rc < 0 ? rc : settings_save_one(name, record, len);
}

int mqtts_prov_delete(const uint8_t *key, size_t key_len)
{
	char name[MQTTS_SETTINGS_NAME_MAX];
	int rc = make_name(name, key, key_len);

	return rc < 0 ? rc : settings_delete(name);
}

/* The change set of one `mqtts apply` (the staged records, concatenated) is first written as
 * this single setting, then key by key, then deleted; a boot that finds it writes the keys
 * again (src/provision.rs). Its own top-level name, outside SUBTREE, so the option load and
 * the factory reset's walk never see it. */
#define JOURNAL "mqapply"

int mqtts_prov_journal_save(const uint8_t *data, size_t len)
{
	return settings_save_one(JOURNAL, data, len);
}

int mqtts_prov_journal_load(uint8_t *buf, size_t cap, size_t *out_len)
{
	return load_into(JOURNAL, true, buf, cap, out_len);
}

int mqtts_prov_journal_delete(void)
{
	return settings_delete(JOURNAL);
}

/* One name at a time: the callback keeps the first `mqtts/...` name and stops the load
 * (a non-zero return ends it), the name is deleted after the load returns, and the load runs
 * again. The backend is never asked to delete an entry while it iterates, and no list of names
 * is held in RAM. Bounded, in case a delete does not take effect. */
#define RESET_MAX 200
struct reset_ctx {
	char name[MQTTS_SETTINGS_NAME_MAX];
	bool found;
};

static int reset_cb(const char *key, size_t len, settings_read_cb read_cb, void *cb_arg,
		    void *param)
{
	struct reset_ctx *ctx = param;
	size_t klen = key == NULL ? 0 : strlen(key);

	ARG_UNUSED(len);
	ARG_UNUSED(read_cb);
	ARG_UNUSED(cb_arg);
	ctx->found = make_name(ctx->name, (const uint8_t *)key, klen) == 0;
	return ctx->found ? 1 : 0;
}

int mqtts_prov_factory_reset(void)
{
	struct reset_ctx ctx;
	int rc;
	int count = 0;

	/* An unfinished apply must not come back after the reset. */
	rc = settings_delete(JOURNAL);
	if (rc < 0) {
		return rc;
	}
	while (count < RESET_MAX) {
		ctx.found = false;
		rc = settings_load_subtree_direct(SUBTREE, reset_cb, &ctx);
		if (rc < 0) {
			return rc;
		}
		if (!ctx.found) {
			return count;
		}
		rc = settings_delete(ctx.name);
		if (rc < 0) {
			return rc;
		}
		count++;
	}
	return -ELOOP;
}

int mqtts_prov_unique_id(uint8_t *buf, size_t cap)
{
	ssize_t n = hwinfo_get_device_id(buf, cap);

	return n < 0 ? (int)n : (int)MIN((size_t)n, cap);
}

int mqtts_prov_set_mac(const uint8_t *mac6)
{
#if !defined(CONFIG_NET_L2_ETHERNET_MGMT)
	/* native_sim (no W5500, no Ethernet L2): mqtts_prov_mac_fixed() is 1 there, so this is
	 * never called; without the option the net_mgmt request handler is not linked. */
	ARG_UNUSED(mac6);
	return -ENOTSUP;
#else
	struct net_if *iface = net_if_get_default();
	struct ethernet_req_params params;
	int rc;
	int up;

	if (iface == NULL) {
		return -ENODEV;
	}
	memcpy(params.mac_address.addr, mac6, sizeof(params.mac_address.addr));
	/* ethernet_mgmt.c refuses NET_REQUEST_ETHERNET_SET_MAC_ADDRESS with -EACCES while the
	 * interface is administratively up, and Zephyr brings it up before main(). This runs
	 * before DHCP is started (main_loop), so the down/up cycle loses nothing. */
	rc = net_if_down(iface);
	if (rc < 0 && rc != -EALREADY) {
		return rc;
	}
	rc = net_mgmt(NET_REQUEST_ETHERNET_SET_MAC_ADDRESS, iface, &params, sizeof(params));
	up = net_if_up(iface);
	if (rc < 0) {
		return rc;
	}
	return (up < 0 && up != -EALREADY) ? up : 0;
#endif
}

void mqtts_prov_reboot(void)
{
	sys_reboot(SYS_REBOOT_COLD);
}

/* --- The shell part (not built where CONFIG_SHELL=n: nucleo_f401re, RAM) ---------------- */
#if defined(CONFIG_SHELL)

void mqtts_prov_print(const void *sh, const uint8_t *text, size_t len)
{
	shell_fprintf((const struct shell *)sh, SHELL_NORMAL, "%.*s\n", (int)len,
		      (const char *)text);
}

/* --- Secret input without echo ------------------------------------------------------------
 * `mqtts set password` (no value) calls mqtts_prov_read_secret(). The shell bypass then hands
 * every received byte to secret_bypass() instead of the command line editor: nothing is echoed,
 * nothing enters the command buffer or the history (shell_set_bypass(sh, NULL, NULL) clears the
 * command buffer), nothing is logged. Enter ends the line, Ctrl-C cancels, Backspace/DEL erase.
 */
static struct {
	char key[65];
	size_t key_len;
	uint8_t line[SECRET_MAX];
	size_t len;
	bool overflow;
} secret;

static void secret_wipe(void)
{
	/* volatile: the compiler must not drop the stores as dead. */
	volatile uint8_t *p = secret.line;

	for (size_t i = 0; i < sizeof(secret.line); i++) {
		p[i] = 0;
	}
	secret.len = 0;
	secret.overflow = false;
}

static void secret_bypass(const struct shell *sh, uint8_t *data, size_t len, void *user_data)
{
	ARG_UNUSED(user_data);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];

		if (c == '\r' || c == '\n') {
			shell_set_bypass(sh, NULL, NULL);
			shell_fprintf(sh, SHELL_NORMAL, "\n");
			if (secret.overflow) {
				shell_fprintf(sh, SHELL_ERROR, "value too long (max %d), nothing set\n",
					      SECRET_MAX);
			} else {
				mqtts_prov_secret_line(sh, (const uint8_t *)secret.key,
						       secret.key_len, secret.line, secret.len);
			}
			secret_wipe();
			return;
		}
		if (c == 0x03) { /* Ctrl-C */
			shell_set_bypass(sh, NULL, NULL);
			shell_fprintf(sh, SHELL_NORMAL, "\ncancelled\n");
			secret_wipe();
			return;
		}
		if (c == 0x08 || c == 0x7f) {
			if (secret.len > 0) {
				secret.len--;
				secret.line[secret.len] = 0;
			}
			continue;
		}
		if (secret.len < sizeof(secret.line)) {
			secret.line[secret.len++] = c;
		} else {
			secret.overflow = true;
		}
	}
}

int mqtts_prov_read_secret(const void *sh, const uint8_t *key, size_t key_len)
{
	if (key_len == 0 || key_len >= sizeof(secret.key)) {
		return -EINVAL;
	}
	secret_wipe();
	memcpy(secret.key, key, key_len);
	secret.key[key_len] = '\0';
	secret.key_len = key_len;
	shell_fprintf((const struct shell *)sh, SHELL_NORMAL,
		      "%s (not echoed; Enter to set, Ctrl-C to cancel): ", secret.key);
	shell_set_bypass((const struct shell *)sh, secret_bypass, NULL);
	return 0;
}

/* --- The `mqtts` command -------------------------------------------------------------------
 * One handler for the group: the grammar is mqtts_core::shell::parse_args, which wants the
 * words after `mqtts`. Mandatory 2 (the shell counts `mqtts` itself, then the subcommand),
 * optional 2 (option, value).
 */
static int cmd_mqtts(const struct shell *sh, size_t argc, char **argv)
{
	mqtts_prov_command(sh, argc - 1, (const char *const *)&argv[1]);
	return 0;
}

SHELL_CMD_ARG_REGISTER(mqtts, NULL,
		       "Device options: mqtts show | set <option> [<value>] | unset <option> | "
		       "apply | factory-reset",
		       cmd_mqtts, 2, 2);

#else /* !CONFIG_SHELL */

/* Rust's shell entry points are never called without the command table, and the linker drops
 * them; these keep the symbols they refer to defined all the same. */
void mqtts_prov_print(const void *sh, const uint8_t *text, size_t len)
{
	ARG_UNUSED(sh);
	ARG_UNUSED(text);
	ARG_UNUSED(len);
}

int mqtts_prov_read_secret(const void *sh, const uint8_t *key, size_t key_len)
{
	ARG_UNUSED(sh);
	ARG_UNUSED(key);
	ARG_UNUSED(key_len);
	return -ENOTSUP;
}

#endif /* CONFIG_SHELL */

/* The W5500 node, if the board has one enabled. */
#define MQTTS_W5500_NODE DT_COMPAT_GET_ANY_STATUS_OKAY(wiznet_w5500)

int mqtts_prov_mac_fixed(void)
{
#if !DT_NODE_EXISTS(MQTTS_W5500_NODE)
	return 1; /* native_sim: no W5500, the host's sockets are used */
#elif DT_NODE_HAS_PROP(MQTTS_W5500_NODE, local_mac_address)
	return 1; /* the overlay fixes the MAC */
#else
	return 0;
#endif
}
