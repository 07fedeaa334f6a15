/*
 * proto: the topic layout of the wire protocol (pure).
 *
 *   outpost/v1/site/<id>/hello   site -> hub   enrollment and re-hello
 *   outpost/v1/site/<id>/state   site -> hub   heartbeat (capacity, power, running jobs)
 *   outpost/v1/site/<id>/event   site -> hub   started / refused
 *   outpost/v1/site/<id>/result  site -> hub   results (resent until acknowledged)
 *   outpost/v1/site/<id>/inbox   hub -> site   welcome, refused, offer, ack, cancel
 *   outpost/v1/op/<id>/req       operator -> hub  CLI requests
 *   outpost/v1/op/<id>/resp      hub -> operator  CLI responses
 *   outpost/v1/peer/<to>/<from>  site -> site  artifact chunks between sites (a pull, the
 *                                              chunks): the broker's ACL lets <from> write
 *                                              it and <to> read it
 * A sender may only publish under its own <id>: the receiver checks that
 * the topic's id equals the message's kid.
 */
#ifndef OUTPOST_PROTO_H
#define OUTPOST_PROTO_H

#include <stddef.h>

#define PROTO_TOPIC_MAX 160
#define PROTO_SMALL_BYTES (64 * 1024)

/* A site repeats its hello until welcomed: first after 1-2 s (half the period to the whole
 * period, jittered), then twice as long each time, up to 8-16 s (timer_backoff). */
#define PROTO_HELLO_FIRST_MS 2000
#define PROTO_HELLO_MAX_MS 16000

/* Builds outpost/v1/<realm>/<id>/<leaf>. OP_ETOOBIG or OP_EINVAL for a bad id. */
int proto_topic(char *buf, size_t size, const char *realm, const char *id, const char *leaf);

/*
 * The largest payload a message on <realm>/<leaf> may have, checked before
 * anything else costs: a hello or a heartbeat (with its goodbye) is small
 * (64 KiB: 256 running jobs take about 10 KiB); results, offers and
 * operator requests carry job data, and a batch of events answers a whole
 * batch of offers, so those may use MSG_MAX_PAYLOAD_BYTES. An unknown leaf
 * gets the small bound.
 */
size_t proto_max_bytes(const char *realm, const char *leaf);

/*
 * 1 if messages on this topic must be sealed to their recipient (msg.h):
 * every topic but a site's state (heartbeats and goodbyes, which carry
 * nothing secret and are the hub's hottest path). A topic that is not of
 * Outpost's shape must be sealed too.
 */
int proto_must_seal(const char *topic);

/* Builds outpost/v1/peer/<to>/<from>. OP_EINVAL for a bad id, OP_ETOOBIG. */
int proto_peer_topic(char *buf, size_t size, const char *to, const char *from);
/* Splits a peer topic into its two ids. OP_EINVAL if it is not one. */
int proto_parse_peer_topic(const char *topic, char to[64], char from[64]);

/*
 * Splits a topic into realm ("site" or "op"), id and leaf. OP_EINVAL if it
 * is not of that shape or the id is not a valid id.
 */
int proto_parse_topic(const char *topic, char realm[8], char id[64], char leaf[16]);

#endif
