// Package janustest holds the helpers of the integration tests that run against real components:
// a Janus server started per test with a generated configuration ([StartJanus]), ffmpeg RTP test
// feeds for Streaming mountpoints ([StartFeed], [MountpointConfig]), a TCP proxy whose connections
// a test can cut ([NewProxy]), and free-port helpers ([FreePort], [FreeUDPPorts]).
//
// These tests need root and the network namespace of TESTING.md (Janus never offers loopback
// candidates, so inside the namespace it offers 127.0.0.2 on the veth v0); `make test` and
// `scripts/netns.sh exec go test ./...` provide both. [Require] skips a test outside such an
// environment, or fails it when CI=true, so CI never passes by skipping.
//
// Every process a helper starts is stopped in t.Cleanup; when the test has failed, the cleanup
// logs the tail of the process's output.
package janustest
