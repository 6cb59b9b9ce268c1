/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * See socket_shim.h. Written against Zephyr v4.4 (namespaced networking API: zsock_*,
 * NET_AF_INET, ZSOCK_SOL_TLS, struct net_sockaddr, net_socklen_t).
 */

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/net_if.h>
#include <zephyr/net/net_ip.h>
#include <zephyr/net/socket.h>
#include <zephyr/net/sntp.h>
#include <zephyr/random/random.h>
#include <zephyr/sys/clock.h>
#include <zephyr/sys/printk.h>
#include <zephyr/sys/util.h>

#if defined(CONFIG_MQTTS_TLS)
#include <zephyr/net/tls_credentials.h>
#endif

#if defined(CONFIG_NET_DHCPV4)
#include <zephyr/net/dhcpv4.h>
#endif

#include "socket_shim.h"

LOG_MODULE_REGISTER(mqtts_shim, LOG_LEVEL_INF);

/* --- Build-time checks ----------------------------------------------------------------------- */
/* CMakeLists.txt reports these first with longer messages; these asserts keep the C side honest
 * if the CMake checks are ever bypassed.
 */

BUILD_ASSERT(sizeof(CONFIG_MQTTS_BROKER_HOST) > 1, "CONFIG_MQTTS_BROKER_HOST is empty");

/* The broker the worker connects to: the Kconfig values until mqtts_shim_set_broker() gives the
 * effective (possibly stored, issue 11) ones, once, before the first connect. 253 is the longest
 * DNS name. */
static char broker_host[254] = CONFIG_MQTTS_BROKER_HOST;
static uint16_t broker_port = CONFIG_MQTTS_BROKER_PORT;

int mqtts_shim_set_broker(const uint8_t *host, size_t len, uint16_t port)
{
	if (len == 0 || len >= sizeof(broker_host)) {
		return MQTTS_SHIM_CONFIG;
	}
	memcpy(broker_host, host, len);
	broker_host[len] = '\0';
	broker_port = port;
	return MQTTS_SHIM_OK;
}
BUILD_ASSERT(CONFIG_MQTTS_BACKOFF_MIN_MS <= CONFIG_MQTTS_BACKOFF_MAX_MS,
	     "CONFIG_MQTTS_BACKOFF_MIN_MS must not exceed CONFIG_MQTTS_BACKOFF_MAX_MS");
BUILD_ASSERT(CONFIG_MQTTS_TELEMETRY_PERIOD_S == 0 || CONFIG_MQTTS_TELEMETRY_PERIOD_S >= 5,
	     "CONFIG_MQTTS_TELEMETRY_PERIOD_S must be 0 (off) or 5..86400");

#if defined(CONFIG_MQTTS_PROFILE_ALIYUN)
BUILD_ASSERT(IS_ENABLED(CONFIG_MQTTS_TLS) && IS_ENABLED(CONFIG_MQTTS_TLS_PEER_VERIFY),
	     "The Alibaba profile needs CONFIG_MQTTS_TLS=y and CONFIG_MQTTS_TLS_PEER_VERIFY=y");
BUILD_ASSERT(CONFIG_MQTTS_KEEPALIVE_S >= 30 && CONFIG_MQTTS_KEEPALIVE_S <= 1200,
	     "Alibaba accepts a keep-alive of 30..1200 s");
#endif

#if defined(CONFIG_MQTTS_TLS) && !defined(CONFIG_ENTROPY_HAS_DRIVER) && \
	!defined(CONFIG_MQTTS_INSECURE_NO_HW_RNG_I_ACCEPT_PREDICTABLE_TLS_KEYS)
#error "No hardware RNG: TLS keys would be predictable. See CONFIG_MQTTS_INSECURE_NO_HW_RNG_I_ACCEPT_PREDICTABLE_TLS_KEYS."
#endif

#if defined(CONFIG_MQTTS_TLS) && !defined(MQTTS_CA_HAVE_GLOBALSIGN_R1) && \
	!defined(MQTTS_CA_HAVE_ALIYUN_IOT_ROOT) && !defined(MQTTS_CA_HAVE_CUSTOM)
#error "TLS is on but CMakeLists.txt embedded no CA certificate (MQTTS_CA_HAVE_*)"
#endif

#if defined(CONFIG_MQTTS_TLS)

/* The Mbed TLS build this image links against, checked where it matters. In Zephyr 4.4 the
 * options are Kconfig assignments in prj.conf / overlay-*.conf: a renamed or unmet option there
 * can leave a feature out without any Kconfig error, so the resulting macros are checked here,
 * by name. Mbed TLS 4's <mbedtls/build_info.h> includes <tf-psa-crypto/build_info.h> first, so
 * both the MBEDTLS_* (TLS, X.509) and the PSA_WANT_* (crypto) macros are visible after it;
 * <mbedtls/ssl.h> adds the defaults of the record sizes. The include is not optional: without
 * the Mbed TLS include path (CMake target mbedTLS, linked by CMakeLists.txt) the build stops
 * here with the fix in the message, instead of skipping the checks.
 */
#if defined(__has_include)
#if !__has_include(<mbedtls/build_info.h>)
#error "The Mbed TLS headers are not on this file's include path: CMakeLists.txt must link the app with Zephyr's mbedTLS interface library (target_link_libraries(app PRIVATE mbedTLS)) so the checks below can run."
#endif
#endif
#include <mbedtls/build_info.h>
#include <mbedtls/ssl.h>

#if !defined(MBEDTLS_X509_CRT_PARSE_C)
#error "Mbed TLS has no X.509 certificate parsing (MBEDTLS_X509_CRT_PARSE_C): no CA can be parsed and TLS_HOSTNAME fails. Set CONFIG_MBEDTLS_X509_CRT_PARSE_C=y."
#endif
#if !defined(MBEDTLS_PEM_PARSE_C)
#error "Mbed TLS has no PEM parser (MBEDTLS_PEM_PARSE_C): the embedded PEM CA certificates cannot be parsed. Set CONFIG_MBEDTLS_PEM_PARSE_C=y."
#endif
#if !defined(MBEDTLS_SSL_SERVER_NAME_INDICATION)
#error "Mbed TLS is built without SNI (MBEDTLS_SSL_SERVER_NAME_INDICATION); brokers behind SNI routing reject the handshake. Set CONFIG_MBEDTLS_SSL_SERVER_NAME_INDICATION=y."
#endif
#if defined(CONFIG_MQTTS_TLS_PEER_VERIFY) && !defined(MBEDTLS_HAVE_TIME_DATE)
#error "Mbed TLS does not check certificate dates (MBEDTLS_HAVE_TIME_DATE): an expired broker certificate would be accepted. Set CONFIG_MBEDTLS_HAVE_TIME_DATE=y."
#endif

/* The sockets are TLS 1.2 (NET_IPPROTO_TLS_1_2 below); TLS 1.3 is not offered. */
#if !defined(MBEDTLS_SSL_PROTO_TLS1_2)
#error "Mbed TLS has no TLS 1.2 (MBEDTLS_SSL_PROTO_TLS1_2). Set CONFIG_MBEDTLS_SSL_PROTO_TLS1_2=y."
#endif
#if !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED) && \
	!defined(MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED)
#error "Mbed TLS has no ECDHE key exchange for TLS 1.2 (MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED or MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED): enable an ECDHE cipher suite (CONFIG_MBEDTLS_CIPHERSUITE_TLS_ECDHE_*)."
#endif

#if defined(CONFIG_MQTTS_PROFILE_ALIYUN)
/* Both Alibaba roots are RSA and the broker may send full-size records. */
#if !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED)
#error "The Alibaba profile needs ECDHE-RSA (MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED): its certificates are RSA. Enable CONFIG_MBEDTLS_CIPHERSUITE_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256."
#endif
#if MBEDTLS_SSL_IN_CONTENT_LEN < 16384
#error "The Alibaba profile needs 16 KB TLS input records (MBEDTLS_SSL_IN_CONTENT_LEN >= 16384): raise CONFIG_MBEDTLS_SSL_MAX_CONTENT_LEN, or use the self-hosted profile on this board."
#endif
#endif /* CONFIG_MQTTS_PROFILE_ALIYUN */

#if defined(MQTTS_CA_HAVE_GLOBALSIGN_R1) && !defined(PSA_WANT_ALG_SHA_1)
#error "GlobalSign Root CA R1 is embedded but SHA-1 is not built (PSA_WANT_ALG_SHA_1): the self-signed root, signed with SHA-1, cannot be parsed. Set CONFIG_PSA_WANT_ALG_SHA_1=y."
#endif

#if defined(CONFIG_MQTTS_TLS_PEER_VERIFY) && !defined(ZSOCK_TLS_CERT_VERIFY_RESULT)
#error "This Zephyr has no ZSOCK_TLS_CERT_VERIFY_RESULT: certificate failures could not be told from other handshake failures, nor checked before the first send."
#endif

#endif /* CONFIG_MQTTS_TLS */

/* --- errno to stable codes -------------------------------------------------------------------- */

static int32_t map_io_errno(int err)
{
	switch (err) {
	case EAGAIN:
#if defined(EWOULDBLOCK) && (EWOULDBLOCK != EAGAIN)
	case EWOULDBLOCK:
#endif
		return MQTTS_SHIM_WOULD_BLOCK;
	case ETIMEDOUT:
		return MQTTS_SHIM_TIMEOUT;
	case ECONNREFUSED:
		return MQTTS_SHIM_REFUSED;
	case ECONNRESET:
	case ECONNABORTED:
	case ENOTCONN:
	case EPIPE:
		return MQTTS_SHIM_CLOSED;
	case ENETDOWN:
	case ENETUNREACH:
	case EHOSTUNREACH:
		return MQTTS_SHIM_NET_DOWN;
	case ENOMEM:
	case ENOBUFS:
	case EMFILE:
	case ENFILE:
		return MQTTS_SHIM_NO_MEMORY;
	default:
		return MQTTS_SHIM_OTHER;
	}
}

/* --- TLS credentials ---------------------------------------------------------------------------- */

#if defined(CONFIG_MQTTS_TLS)

/* PEM text plus a terminating NUL that is counted in the length: Zephyr's TLS layer treats a
 * credential as PEM only if its last byte is NUL, and tls_credential_add() keeps the pointer
 * (no copy), so the arrays are static. One root per security tag (a tag holds at most one
 * credential of each type); the tag is CONFIG_MQTTS_SEC_TAG_BASE + the bit's position.
 */
#if defined(MQTTS_CA_HAVE_GLOBALSIGN_R1)
static const unsigned char mqtts_ca_globalsign_r1[] = {
#include "mqtts_ca_globalsign_r1.pem.inc"
	0x00
};
#endif

#if defined(MQTTS_CA_HAVE_ALIYUN_IOT_ROOT)
static const unsigned char mqtts_ca_aliyun_iot_root[] = {
#include "mqtts_ca_aliyun_iot_root.pem.inc"
	0x00
};
#endif

#if defined(MQTTS_CA_HAVE_CUSTOM)
static const unsigned char mqtts_ca_custom[] = {
#include "mqtts_ca_custom.pem.inc"
	0x00
};
#endif

struct mqtts_ca {
	uint32_t bit;
	const unsigned char *pem;
	size_t len;
};

static const struct mqtts_ca mqtts_cas[] = {
#if defined(MQTTS_CA_HAVE_GLOBALSIGN_R1)
	{MQTTS_SHIM_CA_GLOBALSIGN_R1, mqtts_ca_globalsign_r1, sizeof(mqtts_ca_globalsign_r1)},
#endif
#if defined(MQTTS_CA_HAVE_ALIYUN_IOT_ROOT)
	{MQTTS_SHIM_CA_ALIYUN_IOT_ROOT, mqtts_ca_aliyun_iot_root,
	 sizeof(mqtts_ca_aliyun_iot_root)},
#endif
#if defined(MQTTS_CA_HAVE_CUSTOM)
	{MQTTS_SHIM_CA_CUSTOM, mqtts_ca_custom, sizeof(mqtts_ca_custom)},
#endif
};

/* Security tag of a MQTTS_SHIM_CA_* bit. */
static sec_tag_t ca_tag(uint32_t bit)
{
	return CONFIG_MQTTS_SEC_TAG_BASE + (sec_tag_t)(__builtin_ctz(bit));
}

static uint32_t mqtts_ca_embedded;

static int add_ca(sec_tag_t tag, const unsigned char *pem, size_t len)
{
	int ret = tls_credential_add(tag, TLS_CREDENTIAL_CA_CERTIFICATE, pem, len);

	if (ret == -EEXIST) {
		return 0;
	}
	if (ret < 0) {
		LOG_ERR("tls_credential_add(tag %d) failed: %d", (int)tag, ret);
	}
	return ret;
}

#endif /* CONFIG_MQTTS_TLS */

int32_t mqtts_shim_tls_init(void)
{
#if defined(CONFIG_MQTTS_TLS)
	for (size_t i = 0; i < ARRAY_SIZE(mqtts_cas); i++) {
		if (add_ca(ca_tag(mqtts_cas[i].bit), mqtts_cas[i].pem, mqtts_cas[i].len) < 0) {
			return MQTTS_SHIM_CONFIG;
		}
		mqtts_ca_embedded |= mqtts_cas[i].bit;
	}
	LOG_INF("%d CA certificate(s) registered", (int)ARRAY_SIZE(mqtts_cas));
	return (int32_t)mqtts_ca_embedded;
#else
	return MQTTS_SHIM_OK;
#endif
}

/* --- Connect (worker thread) ------------------------------------------------------------------ */

#if defined(CONFIG_MQTTS_TLS)

static int32_t setup_tls(int fd, uint32_t ca_mask)
{
	/* OPTIONAL, not REQUIRED: the handshake completes even if the certificate fails, so the
	 * verification flags can still be read (check_peer_verified() right after connect(), which
	 * closes the socket before anything is sent). Under REQUIRED, Zephyr resets the session on
	 * the failed handshake and the flags read back as 0 (firmware-review item 8).
	 */
	int verify = IS_ENABLED(CONFIG_MQTTS_TLS_PEER_VERIFY) ? ZSOCK_TLS_PEER_VERIFY_OPTIONAL
							       : ZSOCK_TLS_PEER_VERIFY_NONE;
	sec_tag_t tags[ARRAY_SIZE(mqtts_cas)];
	size_t count = 0;

	if (ca_mask == 0 || (ca_mask & ~mqtts_ca_embedded) != 0) {
		LOG_ERR("CA mask 0x%x asked, 0x%x embedded and registered", (unsigned int)ca_mask,
			(unsigned int)mqtts_ca_embedded);
		return MQTTS_SHIM_CONFIG;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mqtts_cas); i++) {
		if ((ca_mask & mqtts_cas[i].bit) != 0) {
			tags[count++] = ca_tag(mqtts_cas[i].bit);
		}
	}

	/* The credentials are parsed right here: register them before this call. */
	if (zsock_setsockopt(fd, ZSOCK_SOL_TLS, ZSOCK_TLS_SEC_TAG_LIST, tags,
			     count * sizeof(tags[0])) < 0) {
		LOG_ERR("TLS_SEC_TAG_LIST failed: errno %d (CA certificate not parsable?)", errno);
		return MQTTS_SHIM_CONFIG;
	}
	/* One call sets both the SNI name and the name checked against the certificate. */
	if (zsock_setsockopt(fd, ZSOCK_SOL_TLS, ZSOCK_TLS_HOSTNAME, broker_host,
			     strlen(broker_host) + 1) < 0) {
		LOG_ERR("TLS_HOSTNAME failed: errno %d", errno);
		return MQTTS_SHIM_CONFIG;
	}
	if (zsock_setsockopt(fd, ZSOCK_SOL_TLS, ZSOCK_TLS_PEER_VERIFY, &verify, sizeof(verify)) <
	    0) {
		LOG_ERR("TLS_PEER_VERIFY failed: errno %d", errno);
		return MQTTS_SHIM_CONFIG;
	}
	return MQTTS_SHIM_OK;
}

/* Zephyr's TLS connect() reports every failed handshake as ECONNABORTED: tls_mbedtls_handshake()
 * logs "TLS handshake error: -0x%x", resets the session and sets errno ECONNABORTED for any Mbed
 * TLS error other than WANT_READ/WRITE and SSL_TIMEOUT (the latter is ETIMEDOUT). With
 * ZSOCK_TLS_PEER_VERIFY_OPTIONAL a certificate that fails verification does not abort the
 * handshake (check_peer_verified() reports it), so what is left here is an alert from the
 * broker, no common cipher suite or key exchange, or a record the build cannot hold.
 */
static int32_t classify_tls_abort(void)
{
	LOG_ERR("TLS handshake aborted (alert, no common cipher suite or key exchange, or a record "
		"larger than CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN; enable "
		"CONFIG_NET_SOCKETS_LOG_LEVEL_DBG for the Mbed TLS code)");
	return MQTTS_SHIM_TLS_HANDSHAKE;
}

#if defined(CONFIG_MQTTS_TLS_PEER_VERIFY)
/* Right after a successful connect(), before any application data: the Mbed TLS verification
 * flags of the handshake (mbedtls_ssl_get_verify_result() behind ZSOCK_TLS_CERT_VERIFY_RESULT).
 * Returns 0 if the broker certificate was verified, the flags otherwise; a result that cannot be
 * read counts as unverified (MQTTS_SHIM_VERIFY_UNREADABLE). Only called with
 * CONFIG_MQTTS_TLS_PEER_VERIFY; without it the peer is not verified on purpose.
 */
static uint32_t check_peer_verified(int fd)
{
	uint32_t flags = 0;
	net_socklen_t len = sizeof(flags);

	if (zsock_getsockopt(fd, ZSOCK_SOL_TLS, ZSOCK_TLS_CERT_VERIFY_RESULT, &flags, &len) < 0) {
		LOG_ERR("TLS_CERT_VERIFY_RESULT failed: errno %d", errno);
		return MQTTS_SHIM_VERIFY_UNREADABLE;
	}
	if (len != sizeof(flags)) {
		LOG_ERR("TLS_CERT_VERIFY_RESULT returned %d bytes", (int)len);
		return MQTTS_SHIM_VERIFY_UNREADABLE;
	}
	return flags;
}
#endif /* CONFIG_MQTTS_TLS_PEER_VERIFY */

#endif /* CONFIG_MQTTS_TLS */

static int32_t map_connect_errno(int err)
{
	switch (err) {
#if defined(CONFIG_MQTTS_TLS)
	case ECONNABORTED:
		return classify_tls_abort();
#endif
	/* A blocking TLS connect reports a handshake timeout as ETIMEDOUT, a non-blocking one
	 * as EAGAIN (sockets_tls.c); the socket is blocking during connect, but map both.
	 */
	case EAGAIN:
		return MQTTS_SHIM_TIMEOUT;
	default:
		return map_io_errno(err);
	}
}

int32_t mqtts_shim_connect(uint32_t ca_mask, int32_t *out_fd, uint32_t *out_verify_flags)
{
	struct zsock_addrinfo hints;
	struct zsock_addrinfo *res = NULL;
	char port[8];
	int32_t status;
	int proto;
	int fd;
	int ret;

	*out_fd = -1;
	*out_verify_flags = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = NET_AF_INET;
	hints.ai_socktype = NET_SOCK_STREAM;
	snprintk(port, sizeof(port), "%d", broker_port);

	ret = zsock_getaddrinfo(broker_host, port, &hints, &res);
	if (ret != 0 || res == NULL) {
		/* DNS_EAI_* code, a namespace of its own (not errno). */
		LOG_WRN("DNS lookup of %s failed: %d", broker_host, ret);
		return MQTTS_SHIM_DNS;
	}

#if defined(CONFIG_MQTTS_TLS)
	proto = NET_IPPROTO_TLS_1_2;
#else
	ARG_UNUSED(ca_mask);
	proto = NET_IPPROTO_TCP;
#endif

	fd = zsock_socket(res->ai_family, NET_SOCK_STREAM, proto);
	if (fd < 0) {
		status = map_io_errno(errno);
		LOG_ERR("socket() failed: errno %d", errno);
		goto out;
	}

#if defined(CONFIG_MQTTS_TLS)
	status = setup_tls(fd, ca_mask);
	if (status != MQTTS_SHIM_OK) {
		(void)zsock_close(fd);
		goto out;
	}
#endif

	/* TCP connect, then (TLS) the whole handshake: blocks for up to the socket layer's
	 * connect timeouts. Never EINPROGRESS for TLS sockets, so there is nothing to resume.
	 */
	if (zsock_connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		int err = errno;

		status = map_connect_errno(err);
		LOG_WRN("connect to %s:%d failed: errno %d", broker_host,
			broker_port, err);
		(void)zsock_close(fd);
		goto out;
	}

#if defined(CONFIG_MQTTS_TLS) && defined(CONFIG_MQTTS_TLS_PEER_VERIFY)
	/* Nothing has been sent on this socket but the handshake: an unverified broker is closed
	 * here, before the MQTT CONNECT (with its credentials) could ever reach it.
	 */
	{
		uint32_t flags = check_peer_verified(fd);

		if (flags != 0) {
			LOG_ERR("Broker certificate rejected, verify flags 0x%08x (decoded by the "
				"worker)",
				(unsigned int)flags);
			(void)zsock_close(fd);
			*out_verify_flags = flags;
			status = MQTTS_SHIM_TLS_VERIFY;
			goto out;
		}
	}
#endif

	/* Non-blocking from now on. Always the ZVFS value: on native_sim the host's O_NONBLOCK
	 * differs. send/recv also pass ZSOCK_MSG_DONTWAIT, so a failure here is not fatal.
	 */
#if defined(ZVFS_O_NONBLOCK) && defined(ZVFS_F_GETFL) && defined(ZVFS_F_SETFL)
	ret = zsock_fcntl(fd, ZVFS_F_GETFL, 0);
	if (ret >= 0) {
		(void)zsock_fcntl(fd, ZVFS_F_SETFL, ret | ZVFS_O_NONBLOCK);
	}
#endif

	LOG_INF("Connected to %s:%d%s", broker_host, broker_port,
		IS_ENABLED(CONFIG_MQTTS_TLS) ? " (TLS)" : "");
	*out_fd = fd;
	status = MQTTS_SHIM_OK;

out:
	zsock_freeaddrinfo(res);
	return status;
}

/* --- Data path (main thread) ------------------------------------------------------------------ */

int32_t mqtts_shim_send(int32_t fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (len > INT32_MAX) {
		len = INT32_MAX;
	}
	n = zsock_send(fd, buf, len, ZSOCK_MSG_DONTWAIT);
	if (n < 0) {
		int32_t status = map_io_errno(errno);

		if (status != MQTTS_SHIM_WOULD_BLOCK) {
			LOG_WRN("send failed: errno %d", errno);
		}
		return status;
	}
	return (int32_t)n;
}

int32_t mqtts_shim_recv(int32_t fd, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (len == 0) {
		return MQTTS_SHIM_OTHER;
	}
	if (len > INT32_MAX) {
		len = INT32_MAX;
	}
	n = zsock_recv(fd, buf, len, ZSOCK_MSG_DONTWAIT);
	if (n == 0) {
		/* EOF or TLS close_notify. */
		return MQTTS_SHIM_CLOSED;
	}
	if (n < 0) {
		int32_t status = map_io_errno(errno);

		if (status != MQTTS_SHIM_WOULD_BLOCK) {
			/* EIO: Mbed TLS reported a record error; the session is unusable. */
			LOG_WRN("recv failed: errno %d", errno);
		}
		return status;
	}
	return (int32_t)n;
}

int32_t mqtts_shim_poll(int32_t fd, int32_t want_write, int32_t timeout_ms)
{
	struct zsock_pollfd pfd = {
		.fd = fd,
		.events = ZSOCK_POLLIN | (want_write ? ZSOCK_POLLOUT : 0),
		.revents = 0,
	};
	int32_t mask = 0;
	int ret;

	ret = zsock_poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
	if (ret < 0) {
		return map_io_errno(errno);
	}
	if (pfd.revents & ZSOCK_POLLIN) {
		mask |= MQTTS_SHIM_POLL_READABLE;
	}
	if (pfd.revents & ZSOCK_POLLOUT) {
		mask |= MQTTS_SHIM_POLL_WRITABLE;
	}
	if (pfd.revents & ZSOCK_POLLHUP) {
		mask |= MQTTS_SHIM_POLL_HANGUP;
	}
	if (pfd.revents & (ZSOCK_POLLERR | ZSOCK_POLLNVAL)) {
		mask |= MQTTS_SHIM_POLL_ERROR;
	}
	return mask;
}

void mqtts_shim_close(int32_t fd)
{
	if (fd >= 0) {
		(void)zsock_close(fd);
	}
}

/* --- Network interface ------------------------------------------------------------------------- */

#if defined(CONFIG_MQTTS_NET_STATIC) && !defined(CONFIG_NET_NATIVE_OFFLOADED_SOCKETS)
static int32_t apply_static_ipv4(struct net_if *iface)
{
	struct net_in_addr addr;
	struct net_in_addr netmask;
	struct net_in_addr gateway;

	if (net_addr_pton(NET_AF_INET, CONFIG_MQTTS_STATIC_IPV4_ADDR, &addr) < 0 ||
	    net_addr_pton(NET_AF_INET, CONFIG_MQTTS_STATIC_IPV4_NETMASK, &netmask) < 0 ||
	    net_addr_pton(NET_AF_INET, CONFIG_MQTTS_STATIC_IPV4_GATEWAY, &gateway) < 0) {
		LOG_ERR("Static IPv4 settings are not valid dotted-decimal addresses");
		return MQTTS_SHIM_CONFIG;
	}
	if (net_if_ipv4_addr_add(iface, &addr, NET_ADDR_MANUAL, 0) == NULL) {
		LOG_ERR("Cannot add the static IPv4 address");
		return MQTTS_SHIM_CONFIG;
	}
	(void)net_if_ipv4_set_netmask_by_addr(iface, &addr, &netmask);
	net_if_ipv4_set_gw(iface, &gateway);
	LOG_INF("Static IPv4 address %s", CONFIG_MQTTS_STATIC_IPV4_ADDR);
	return MQTTS_SHIM_OK;
}
#endif

int32_t mqtts_shim_net_start(void)
{
#if defined(CONFIG_NET_NATIVE_OFFLOADED_SOCKETS)
	/* native_sim: the host's network stack is used as is. */
	return MQTTS_SHIM_OK;
#else
	struct net_if *iface = net_if_get_default();

	if (iface == NULL) {
		LOG_ERR("No network interface (is the W5500 node enabled in the devicetree?)");
		return MQTTS_SHIM_NET_DOWN;
	}

#if defined(CONFIG_MQTTS_NET_STATIC)
	return apply_static_ipv4(iface);
#elif defined(CONFIG_NET_DHCPV4)
	/* The DHCPv4 client follows the interface: after a cable unplug/replug it renews or
	 * restarts by itself.
	 */
	net_dhcpv4_start(iface);
	LOG_INF("DHCPv4 started");
	return MQTTS_SHIM_OK;
#else
	return MQTTS_SHIM_OK;
#endif
#endif
}

int32_t mqtts_shim_net_state(void)
{
#if defined(CONFIG_NET_NATIVE_OFFLOADED_SOCKETS)
	return MQTTS_SHIM_NET_READY;
#else
	struct net_if *iface = net_if_get_default();

	if (iface == NULL) {
		return MQTTS_SHIM_NET_NO_INTERFACE;
	}
	if (!net_if_is_up(iface) || !net_if_is_carrier_ok(iface)) {
		return MQTTS_SHIM_NET_NO_LINK;
	}
	if (net_if_ipv4_get_global_addr(iface, NET_ADDR_PREFERRED) == NULL) {
		return MQTTS_SHIM_NET_NO_ADDRESS;
	}
	return MQTTS_SHIM_NET_READY;
#endif
}

uint32_t mqtts_shim_random_u32(void)
{
	return sys_rand32_get();
}

/* --- Time ------------------------------------------------------------------------------------- */

/* 2024-01-01T00:00:00Z: any clock before this has certainly not been set. */
#define MQTTS_PLAUSIBLE_UNIX_TIME 1704067200LL

int32_t mqtts_shim_sntp_sync(int64_t *out_unix_s)
{
	struct sntp_time ts;
	struct timespec tspec;
	time_t libc_now;
	int ret;

	ret = sntp_simple(CONFIG_MQTTS_SNTP_SERVER, CONFIG_MQTTS_SNTP_TIMEOUT_MS, &ts);
	if (ret < 0) {
		LOG_WRN("SNTP query to %s failed: %d", CONFIG_MQTTS_SNTP_SERVER, ret);
		return ret == -ETIMEDOUT ? MQTTS_SHIM_TIMEOUT : MQTTS_SHIM_OTHER;
	}
	if ((int64_t)ts.seconds < MQTTS_PLAUSIBLE_UNIX_TIME) {
		LOG_WRN("SNTP answer is implausible (%lld s), ignored", (long long)ts.seconds);
		return MQTTS_SHIM_OTHER;
	}

	memset(&tspec, 0, sizeof(tspec));
	tspec.tv_sec = (time_t)ts.seconds;
	tspec.tv_nsec = (long)(((uint64_t)ts.fraction * 1000000000ULL) >> 32);
	ret = sys_clock_settime(SYS_CLOCK_REALTIME, &tspec);
	if (ret < 0) {
		LOG_ERR("Setting the realtime clock failed: %d", ret);
		return MQTTS_SHIM_OTHER;
	}

	/* Mbed TLS checks certificate dates with libc time(). If that is not backed by the clock
	 * just set, every handshake will fail with "not yet valid": say so once, clearly.
	 */
	libc_now = time(NULL);
	if ((int64_t)libc_now < MQTTS_PLAUSIBLE_UNIX_TIME) {
		LOG_ERR("Clock set by SNTP, but libc time() still reads %lld: certificate date "
			"checks will fail. The libc time() backend is not the realtime clock.",
			(long long)libc_now);
	}

	*out_unix_s = (int64_t)ts.seconds;
	return MQTTS_SHIM_OK;
}
