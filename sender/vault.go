package sender

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/atomicfile"
)

// The vault keeps the client's state and history on disk encrypted under a
// key derived from the user's passphrase with Argon2id (RFC 9106), so that
// a stolen laptop or backup reveals neither keys nor messages nor
// contacts without the passphrase. Files are created with mode 0600 in a
// 0700 directory.
//
// State file (state.sealnet), rewritten atomically on every change:
//
//	"SEALNET-STATE-1\n" || salt (16) || time (4) || memory KiB (4) || threads (1)
//	|| nonce (24) || XChaCha20-Poly1305(key, nonce, ad = everything before the nonce, state)
//
// History file (history.sealnet), append only, one record per message:
//
//	length (4) || nonce (24) || XChaCha20-Poly1305(key, nonce, ad = "sealnet history v1", record)
//
// Marker file (state.marker), rewritten atomically after every save of
// the state, so that an older state put back is noticed (rollback.go):
//
//	nonce (24) || XChaCha20-Poly1305(key, nonce, ad = "sealnet state marker v1", generation (8))

// ErrPassphrase: the passphrase does not open the state.
var ErrPassphrase = errors.New("sender: wrong passphrase (or a damaged state file)")

// ErrLocked: another sealnet process uses this state directory.
var ErrLocked = errors.New("sender: the state directory is in use by another sealnet process (a running `sealnet daemon`?)")

const (
	stateFile   = "state.sealnet"
	historyFile = "history.sealnet"
	lockFile    = "state.lock"
	stateMagic  = "SEALNET-STATE-1\n"
	historyAD   = "sealnet history v1"
	maxState    = 64 << 20
	maxRecord   = 1 << 20
)

// KDFParams are Argon2id costs; they are stored in the state file.
type KDFParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultKDF follows RFC 9106's second recommended option (t=3, 64 MiB).
var DefaultKDF = KDFParams{Time: 3, Memory: 64 << 10, Threads: 2}

func (p KDFParams) check() error {
	if p.Time < 1 || p.Time > 20 || p.Memory < 8<<10 || p.Memory > 1<<20 || p.Threads < 1 || p.Threads > 64 {
		return fmt.Errorf("sender: Argon2id parameters out of range: %+v", p)
	}
	return nil
}

// vault is an open state directory.
type vault struct {
	dir  string
	key  [32]byte
	kdf  KDFParams
	salt [16]byte
	lock *os.File
}

func (v *vault) header() []byte {
	var b bytes.Buffer
	b.WriteString(stateMagic)
	b.Write(v.salt[:])
	binary.Write(&b, binary.BigEndian, v.kdf.Time)
	binary.Write(&b, binary.BigEndian, v.kdf.Memory)
	b.WriteByte(v.kdf.Threads)
	return b.Bytes()
}

func deriveKey(pass []byte, salt []byte, p KDFParams) [32]byte {
	var k [32]byte
	copy(k[:], argon2.IDKey(pass, salt, p.Time, p.Memory, p.Threads, 32))
	return k
}

// lockDir takes the directory's exclusive lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return f, nil
}

// InUse reports whether another process (a running daemon) holds dir's
// lock, without unlocking anything: a command can then hand its work to
// that process instead of starting what it would need itself.
func InUse(dir string) bool {
	f, err := lockDir(dir)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	f.Close()
	return false
}

// createVault makes a new state directory protected by pass.
func createVault(dir string, pass []byte, kdf KDFParams) (*vault, error) {
	if err := kdf.check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("sender: %s already holds an identity; choose another directory", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	v := &vault{dir: dir, kdf: kdf, lock: lk}
	rand.Read(v.salt[:])
	v.key = deriveKey(pass, v.salt[:], kdf)
	return v, nil
}

// openVault opens an existing state directory and returns the decrypted
// state.
func openVault(dir string, pass []byte) (*vault, []byte, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("sender: no identity in %s; run `sealnet init` first", dir)
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	v, pt, err := readVault(dir, pass)
	if err != nil {
		lk.Close()
		return nil, nil, err
	}
	v.lock = lk
	return v, pt, nil
}

// readVault decrypts the state without taking the lock: for reading the
// history and spooling messages while a daemon holds the directory.
func readVault(dir string, pass []byte) (*vault, []byte, error) {
	fail := func(err error) (*vault, []byte, error) { return nil, nil, err }
	f, err := os.Open(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("sender: no identity in %s; run `sealnet init` first", dir))
	}
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxState+1))
	if err != nil {
		return fail(err)
	}
	v, hl, err := parseStateHeader(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err))
	}
	v.dir = dir
	v.key = deriveKey(pass, v.salt[:], v.kdf)
	aead, _ := chacha20poly1305.NewX(v.key[:])
	nonce := data[hl : hl+24]
	pt, err := aead.Open(nil, nonce, data[hl+24:], data[:hl])
	if err != nil {
		clear(v.key[:])
		return fail(ErrPassphrase)
	}
	return v, pt, nil
}

// parseStateHeader reads the salt and Argon2id costs of a state file and
// returns the header's length; the costs are bounded, so a changed file
// cannot make the client spend unbounded memory or time.
func parseStateHeader(data []byte) (*vault, int, error) {
	hl := len(stateMagic) + 16 + 4 + 4 + 1
	if len(data) > maxState || len(data) < hl+24+16 || string(data[:len(stateMagic)]) != stateMagic {
		return nil, 0, errors.New("sender: not a sealnet state file")
	}
	v := &vault{}
	h := data[len(stateMagic):]
	copy(v.salt[:], h)
	v.kdf = KDFParams{Time: binary.BigEndian.Uint32(h[16:]), Memory: binary.BigEndian.Uint32(h[20:]), Threads: h[24]}
	if err := v.kdf.check(); err != nil {
		return nil, 0, err
	}
	return v, hl, nil
}

// save encrypts and writes the state atomically (temporary file, fsync,
// rename, fsync the directory), then the marker of its generation, gen
// (the generation the state itself holds). In this order, a crash in
// between leaves a marker below the state's generation, which is not
// taken for a rollback.
func (v *vault) save(state []byte, gen uint64) error {
	aead, _ := chacha20poly1305.NewX(v.key[:])
	hdr := v.header()
	nonce := make([]byte, 24)
	rand.Read(nonce)
	out := append(append(hdr, nonce...), aead.Seal(nil, nonce, state, hdr)...)
	if err := atomicfile.Write(filepath.Join(v.dir, stateFile), out); err != nil {
		return err
	}
	return v.writeMarker(gen)
}

// appendHistory appends one encrypted record.
func (v *vault) appendHistory(rec []byte) error {
	if len(rec) > maxRecord {
		return errors.New("sender: history record too large")
	}
	aead, _ := chacha20poly1305.NewX(v.key[:])
	nonce := make([]byte, 24)
	rand.Read(nonce)
	ct := aead.Seal(nil, nonce, rec, []byte(historyAD))
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(nonce)+len(ct)))
	buf = append(append(buf, nonce...), ct...)
	f, err := os.OpenFile(filepath.Join(v.dir, historyFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Sync()
}

// readHistory decrypts every record; a torn last record is ignored.
func (v *vault) readHistory() ([][]byte, error) {
	data, err := os.ReadFile(filepath.Join(v.dir, historyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	aead, _ := chacha20poly1305.NewX(v.key[:])
	var out [][]byte
	for len(data) >= 4 {
		n := int(binary.BigEndian.Uint32(data))
		if n > maxRecord+64 || n < 24+16 || len(data)-4 < n {
			break
		}
		rec, err := aead.Open(nil, data[4:28], data[28:4+n], []byte(historyAD))
		if err != nil {
			return out, fmt.Errorf("sender: history record does not decrypt: %w", err)
		}
		out = append(out, rec)
		data = data[4+n:]
	}
	return out, nil
}

// close releases the lock and forgets the key.
func (v *vault) close() {
	clear(v.key[:])
	if v.lock != nil {
		v.lock.Close()
		v.lock = nil
	}
}
