package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating test databases
)

// PostgresEnv is the environment variable that makes a missing PostgreSQL
// a test failure instead of a skip: CI sets it to "require".
const PostgresEnv = "LLMGW_TEST_POSTGRES"

// installHint says how to get the binaries the tests need.
const installHint = "apt-get install postgresql (initdb and pg_ctl in PATH or /usr/lib/postgresql/*/bin)"

// The throwaway cluster is one per test binary: starting one costs a second
// or two, a database in it a few milliseconds. It is the only package state
// here; StopPostgres ends it.
var cluster struct {
	once    sync.Once
	dir     string    // data directory, socket and log; removed by StopPostgres
	cmd     *exec.Cmd // the postgres server process
	port    int
	server  []string            // the server's command line, for each start
	cred    *syscall.Credential // whom the server runs as; nil: as us
	logName string
	err     error // why there is no cluster
	missing bool  // err is "not installed"
	n       atomic.Int64
}

// Postgres returns the URL of a new, empty database on a throwaway
// PostgreSQL cluster that the first call starts (initdb into a temporary
// directory, the server on a free loopback port); the database is dropped
// when the test ends. Without PostgreSQL installed it skips the test,
// saying how to install it, unless LLMGW_TEST_POSTGRES=require, which makes
// it fail instead. A test binary that calls Postgres stops the cluster with
// StopPostgres in its TestMain; the server also dies with the test binary.
func Postgres(tb testing.TB) string {
	tb.Helper()
	cluster.once.Do(startCluster)
	if cluster.err != nil {
		if cluster.missing && os.Getenv(PostgresEnv) != "require" {
			tb.Skipf("PostgreSQL not installed: %v; %s (set %s=require to fail instead)", cluster.err, installHint, PostgresEnv)
		}
		tb.Fatalf("PostgreSQL test cluster: %v", cluster.err)
	}
	name := "t_" + strconv.FormatInt(cluster.n.Add(1), 10)
	admin(tb, `CREATE DATABASE `+name)
	tb.Cleanup(func() { admin(tb, `DROP DATABASE `+name+` WITH (FORCE)`) })
	return clusterURL(name)
}

func clusterURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", cluster.port, db)
}

// admin runs one statement in the cluster's postgres database. It opens
// and closes its own pool so that no pool outlives the test (goleak).
func admin(tb testing.TB, stmt string) {
	tb.Helper()
	db, err := sql.Open("pgx", clusterURL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	}()
	if _, err := db.ExecContext(context.Background(), stmt); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

// StopPostgres stops the cluster that Postgres started, if any, at once
// (as pg_ctl stop -m immediate does), and removes its directory. TestMain
// calls it after the tests, whatever their result.
func StopPostgres() {
	if cluster.cmd != nil && cluster.cmd.Process != nil {
		_ = cluster.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
		_ = cluster.cmd.Wait()                          // it was told to exit; how is not interesting
		cluster.cmd = nil
	}
	if cluster.dir != "" {
		_ = os.RemoveAll(cluster.dir)
		cluster.dir = ""
	}
}

// pgBin finds a PostgreSQL program in PATH, then in Debian's versioned
// directories (the newest first).
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		p := filepath.Join(dirs[i], name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func startCluster() {
	initdb, err := pgBin("initdb")
	if err == nil {
		_, err = pgBin("postgres")
	}
	if err != nil {
		cluster.err, cluster.missing = err, true
		return
	}
	postgres, _ := pgBin("postgres")
	if cluster.err = start(initdb, postgres); cluster.err != nil {
		StopPostgres()
	}
}

// start runs initdb and then the server itself, as a child process rather
// than through pg_ctl's daemon, so that the kernel kills it if the test
// binary dies (a timeout, a panic) before StopPostgres. PostgreSQL refuses
// to run as root, so as root both run as the postgres user that Debian's
// package creates.
func start(initdb, postgres string) error {
	dir, err := os.MkdirTemp("", "llmgw-pg-")
	if err != nil {
		return err
	}
	cluster.dir = dir
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres user to run the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	defer logf.Close() //nolint:errcheck // the children write it; ours is only a handle to pass on
	if cred != nil {
		if err := logf.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w (see %s)", err, logf.Name())
	}
	if cluster.port, err = freePort(); err != nil {
		return err
	}
	// Durability is not wanted in a throwaway cluster; speed is.
	cluster.server = []string{postgres, "-D", data, "-p", strconv.Itoa(cluster.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200"}
	cluster.cred, cluster.logName = cred, logf.Name()
	return startServer()
}

// startServer starts the server of the initialized cluster, logging to
// its log file, and waits until it accepts connections.
func startServer() error {
	logf, err := os.OpenFile(cluster.logName, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer logf.Close() //nolint:errcheck // the child writes it; ours is only a handle to pass on
	cmd := exec.Command(cluster.server[0], cluster.server[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cluster.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	cluster.cmd = cmd
	return waitReady(cluster.logName)
}

// RestartPostgres stops the server of the cluster that Postgres started,
// calls down while it is stopped, and starts it again on the same port and
// data: a brief outage, as a PostgreSQL restart or failover gives clients.
// The stop is a fast shutdown (SIGINT, as pg_ctl stop -m fast): open
// sessions are ended and committed data is kept.
//
// Every database of the cluster goes down, so the test calling it must not
// overlap other PostgreSQL tests of its binary: it must not call
// t.Parallel (top-level tests that do only start after every sequential
// test has finished), nor run parallel subtests of its own.
func RestartPostgres(tb testing.TB, down func()) {
	tb.Helper()
	if cluster.cmd == nil {
		tb.Fatal("RestartPostgres: no cluster running (call Postgres first)")
	}
	if err := cluster.cmd.Process.Signal(syscall.SIGINT); err != nil {
		tb.Fatalf("stop postgres: %v", err)
	}
	err := cluster.cmd.Wait()
	cluster.cmd = nil
	if err != nil {
		tb.Fatalf("stop postgres: %v (see %s)", err, cluster.logName)
	}
	down()
	if err := startServer(); err != nil {
		tb.Fatalf("restart postgres: %v", err)
	}
}

// waitReady waits until the server accepts connections, as pg_ctl -w does.
func waitReady(logName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", clusterURL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck // a ping pool; its close error says nothing about the server
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(logName)
			return fmt.Errorf("postgres did not start: %w\n%s", errors.Join(err, ctx.Err()), log)
		case <-tick.C:
		}
	}
}

// freePort returns a loopback port that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // only the port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}
