module github.com/sealnet/sealnet

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/flynn/noise v1.1.0
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.58.0
)

require golang.org/x/sys v0.49.0 // indirect
