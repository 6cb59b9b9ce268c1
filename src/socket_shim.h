/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Plain C functions around Zephyr's socket, TLS credential, network interface and SNTP APIs.
 *
 * Why this file exists: the zsock_* calls are static inline syscall wrappers (or macros) in
 * Zephyr's headers, so Rust cannot link to them; zephyr-lang-rust has no networking bindings.
 * These functions are real symbols, called from src/ffi.rs.
 *
 * Results are small stable codes (MQTTS_SHIM_*), never errno or libc numbers: errno values
 * differ between picolibc (STM32, RP2040) and the host glibc (native_sim), and Zephyr's
 * getaddrinfo reports DNS_EAI_* codes. The raw values are logged here, in C.
 *
 * Threading: mqtts_shim_connect() blocks (DNS + TCP + the whole TLS handshake) and is meant
 * for the connection worker thread. All other functions return promptly.
 */

#ifndef MQTTS_SOCKET_SHIM_H_
#define MQTTS_SOCKET_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The stable codes below are defined here and only here. The Rust side mirrors them in
 * crates/mqtts-core/src/firmware/shim.rs (and ca.rs), and a host test there parses this header
 * and fails if the two disagree: change both together. Keep one enumerator per line in the
 * form `NAME = number,` so that test can read it.
 */

/* Results: >= 0 is success (a count, a mask), negative values are these statuses. */
enum mqtts_shim_status {
	MQTTS_SHIM_OK = 0,
	MQTTS_SHIM_WOULD_BLOCK = -1,   /* nothing to do now, not an error */
	MQTTS_SHIM_TIMEOUT = -2,       /* TCP connect, TLS handshake or SNTP timed out */
	MQTTS_SHIM_REFUSED = -3,       /* TCP RST on connect */
	MQTTS_SHIM_TLS_VERIFY = -4,    /* broker certificate rejected (CA, date, host name) */
	MQTTS_SHIM_TLS_HANDSHAKE = -5, /* handshake aborted: alert, no common cipher, or a
					* verification failure Zephyr did not report as such */
	MQTTS_SHIM_DNS = -6,           /* host name did not resolve */
	MQTTS_SHIM_CLOSED = -7,        /* peer closed (EOF, close_notify, reset) */
	MQTTS_SHIM_NET_DOWN = -8,      /* no interface, no route, link down */
	MQTTS_SHIM_NO_MEMORY = -9,     /* out of sockets, buffers or Mbed TLS heap */
	MQTTS_SHIM_CONFIG = -10,       /* bad build configuration (CA, static address) */
	MQTTS_SHIM_OTHER = -11,        /* anything else; details are in the log */
};

/* Bits of a successful mqtts_shim_poll() result. */
enum mqtts_shim_poll_bits {
	MQTTS_SHIM_POLL_READABLE = 0x1,
	MQTTS_SHIM_POLL_WRITABLE = 0x2,
	MQTTS_SHIM_POLL_HANGUP = 0x4,
	MQTTS_SHIM_POLL_ERROR = 0x8,
};

/* Network interface states returned by mqtts_shim_net_state(). */
enum mqtts_shim_net_state {
	MQTTS_SHIM_NET_NO_INTERFACE = 0,
	MQTTS_SHIM_NET_NO_LINK = 1,
	MQTTS_SHIM_NET_NO_ADDRESS = 2,
	MQTTS_SHIM_NET_READY = 3,
};

/* Embedded root certificates, as a mask for mqtts_shim_connect(). Each has its own security
 * tag: CONFIG_MQTTS_SEC_TAG_BASE + bit position (GlobalSign R1 +0, Aliyun IoT Root +1,
 * custom +2). The Rust side chooses the mask per profile and port.
 */
enum mqtts_shim_ca {
	MQTTS_SHIM_CA_GLOBALSIGN_R1 = 0x1,
	MQTTS_SHIM_CA_ALIYUN_IOT_ROOT = 0x2,
	MQTTS_SHIM_CA_CUSTOM = 0x4,
};

/* Broker certificate verification flags stored by mqtts_shim_connect() beside
 * MQTTS_SHIM_TLS_VERIFY: Mbed TLS's MBEDTLS_X509_BADCERT_* bits (decoded in
 * crates/mqtts-core/src/firmware/verify.rs), plus this bit of our own, which Mbed TLS never sets.
 */
enum mqtts_shim_verify {
	MQTTS_SHIM_VERIFY_UNREADABLE = 0x40000000, /* ZSOCK_TLS_CERT_VERIFY_RESULT failed */
};

/* Registers the CA certificates embedded by the build as TLS credentials. Idempotent. Returns
 * the mask of embedded roots (MQTTS_SHIM_CA_* bits, 0 without TLS) or a negative status.
 */
int32_t mqtts_shim_tls_init(void);

/* Resolves CONFIG_MQTTS_BROKER_HOST, creates a TCP or TLS socket (SNI + host name check +
 * peer verification as configured, trusting the roots in ca_mask, MQTTS_SHIM_CA_* bits),
 * connects it (TLS: the whole handshake) and switches it to non-blocking mode. BLOCKS. On
 * success stores the socket in *out_fd and returns MQTTS_SHIM_OK. A mask naming a root the
 * build did not embed, or none, is MQTTS_SHIM_CONFIG.
 *
 * With CONFIG_MQTTS_TLS_PEER_VERIFY the handshake runs with ZSOCK_TLS_PEER_VERIFY_OPTIONAL and
 * the verification result is read right after connect() returns: if it is not zero (or cannot
 * be read) the socket is closed before a single byte of application data is sent, the flags are
 * stored in *out_verify_flags and the result is MQTTS_SHIM_TLS_VERIFY. *out_verify_flags is 0
 * in every other case.
 */
int32_t mqtts_shim_connect(uint32_t ca_mask, int32_t *out_fd, uint32_t *out_verify_flags);

/* Sends up to len bytes without blocking. Returns the number of bytes taken (>= 0) or a
 * negative MQTTS_SHIM_* code (MQTTS_SHIM_WOULD_BLOCK when none can be taken now).
 *
 * Would-block rule (TLS: this is mbedtls_ssl_write()): after MQTTS_SHIM_WOULD_BLOCK or a
 * result of 0, the caller must call again with exactly the same buf and len until some bytes
 * are taken. The first record is already encrypted and queued inside Mbed TLS; the retry only
 * flushes it, and a retry with other bytes would be reported as sent while the queued record
 * goes out instead. This function passes buf and len through unchanged (len is only capped at
 * INT32_MAX, the same cap on every call), so equal calls stay equal.
 */
int32_t mqtts_shim_send(int32_t fd, const uint8_t *buf, size_t len);

/* Receives up to len (> 0) bytes without blocking. Returns the number of bytes (> 0),
 * MQTTS_SHIM_WOULD_BLOCK when none are available, MQTTS_SHIM_CLOSED at end of stream.
 */
int32_t mqtts_shim_recv(int32_t fd, uint8_t *buf, size_t len);

/* Waits up to timeout_ms (0 = just look) for fd to become readable (and writable if
 * want_write != 0). Returns a mask of MQTTS_SHIM_POLL_* bits (0 on timeout) or a code.
 */
int32_t mqtts_shim_poll(int32_t fd, int32_t want_write, int32_t timeout_ms);

/* Closes fd (sends TLS close_notify if possible). Negative fds are ignored. */
void mqtts_shim_close(int32_t fd);

/* Starts IPv4 configuration of the default interface: DHCPv4 or the static address from
 * Kconfig. Returns promptly; the address arrives later (see mqtts_shim_net_state()).
 */
int32_t mqtts_shim_net_start(void);

/* Current state of the default interface, one of MQTTS_SHIM_NET_*. */
int32_t mqtts_shim_net_state(void);

/* Queries CONFIG_MQTTS_SNTP_SERVER once (bounded by CONFIG_MQTTS_SNTP_TIMEOUT_MS, blocks up to
 * that long) and sets the realtime clock. Stores the Unix time in *out_unix_s on success.
 */
int32_t mqtts_shim_sntp_sync(int64_t *out_unix_s);

/* A random word for reconnect jitter (sys_rand32_get(): not for keys). */
uint32_t mqtts_shim_random_u32(void);

/* The broker for later connects (host: len bytes, no NUL needed; copied). Call from the
 * application thread before the first connect is submitted. MQTTS_SHIM_CONFIG if too long. */
int mqtts_shim_set_broker(const uint8_t *host, size_t len, uint16_t port);

#ifdef __cplusplus
}
#endif

#endif /* MQTTS_SOCKET_SHIM_H_ */
