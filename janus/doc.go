// Package janus is a client for the Janus WebRTC Server's API with the reach
// of janus.js, in Go idiom.
//
// A Session talks to the first of a list of servers that answers, over HTTP
// (REST plus long poll) or WebSocket (janus-protocol), keeps itself alive,
// and survives transport drops: it reconnects with backoff across the
// servers, claims the session on the new transport while Janus still has
// it, and re-creates it when Janus lost it, telling the caller which
// happened through Session.Events. A Handle is attached to a plugin; it
// sends synchronous requests (Request), asynchronous messages with an
// optional JSEP (Message: ack, then the plugin's event), trickle candidates,
// hangup and detach, and delivers the plugin's and the core's events
// (Handle.Events).
//
// Typed helpers build the requests of the Streaming, VideoRoom, AudioBridge
// and EchoTest plugins. A Peer negotiates a pion PeerConnection through a
// Handle with janus.js's semantics (offer, answer, remote JSEP, trickle,
// ICE restart, data channels, an SDP edit hook), and NewAPI builds the pion
// API from WebRTC settings in one place.
//
// The package never logs unless given a logger, and every call takes a
// context.
package janus
