package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/apiclient"
)

// registryFlags are the flags pull and push share.
type registryFlags struct {
	creds    string
	insecure bool
}

func (f *registryFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.creds, "creds", "", "USER[:PASSWORD] for the registry (default: what `cairn login` stored)")
	cmd.Flags().BoolVar(&f.insecure, "insecure-registry", false, "plain http: only to a loopback registry (or one cairnd --insecure-registry names)")
}

// auth builds the request's credentials: --creds, else the stored login.
func (f *registryFlags) auth(ref string) (*cairnv1.RegistryAuth, error) {
	a := &cairnv1.RegistryAuth{Insecure: f.insecure}
	if f.creds != "" {
		user, pass, _ := strings.Cut(f.creds, ":")
		a.Username, a.Password = user, pass
		return a, nil
	}
	cfg, err := readAuthConfig()
	if err != nil {
		return nil, err
	}
	if e, ok := cfg.Auths[authKey(registryHost(ref))]; ok {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return nil, fmt.Errorf("%s: the login of %s does not decode: %w", authConfigPath(), registryHost(ref), err)
		}
		a.Username, a.Password, _ = strings.Cut(string(raw), ":")
		a.IdentityToken = e.IdentityToken
	}
	return a, nil
}

// registryHost is the registry a reference names, by Docker's rule: the
// first component when it has a '.' or ':' or is localhost, else Docker
// Hub. (Done by hand, like familiar: the shim binary must stay small.)
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// authKey is the config.json key of a registry; Docker Hub's is its
// historical URL, as docker login writes it.
func authKey(host string) string {
	if host == "docker.io" || host == "index.docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}

// authConfig is the part of Docker's config.json cairn reads and writes.
type authConfig struct {
	Auths map[string]authEntry `json:"auths"`
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// authConfigPath is where logins are kept: $CAIRN_CONFIG, else
// ~/.cairn/config.json (Docker's format, mode 0600).
func authConfigPath() string {
	if p := os.Getenv("CAIRN_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cairn", "config.json")
}

func readAuthConfig() (authConfig, error) {
	cfg := authConfig{Auths: map[string]authEntry{}}
	raw, err := os.ReadFile(authConfigPath())
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", authConfigPath(), err)
	}
	if cfg.Auths == nil {
		cfg.Auths = map[string]authEntry{}
	}
	return cfg, nil
}

// writeAuthConfig replaces the file atomically, 0600 from the start.
func writeAuthConfig(cfg authConfig) error {
	p := authConfigPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func loginCmd() *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [SERVER] -u USER (-p PASSWORD | --password-stdin)",
		Short: "Store credentials for a registry (Docker's config.json format)",
		Long: `Store credentials for a registry in $CAIRN_CONFIG or ~/.cairn/config.json
(mode 0600, Docker's format), which pull and push send to cairnd with each
call. SERVER defaults to Docker Hub. The credentials are not checked here:
the next pull or push tells.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = args[0]
			}
			if passwordStdin {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && err != io.EOF {
					return err
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if user == "" || password == "" {
				return errors.New("login needs -u and a password (-p or --password-stdin)")
			}
			cfg, err := readAuthConfig()
			if err != nil {
				return err
			}
			cfg.Auths[authKey(host)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
			if err := writeAuthConfig(cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Login stored for %s in %s\n", host, authConfigPath())
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Remove the stored credentials of a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = args[0]
			}
			cfg, err := readAuthConfig()
			if err != nil {
				return err
			}
			delete(cfg.Auths, authKey(host))
			return writeAuthConfig(cfg)
		},
	}
}

func pullCmd(c *clients) *cobra.Command {
	var rf registryFlags
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [--platform os/arch] REF",
		Short: "Pull an image from a registry",
		Long: `Pull an image from an OCI distribution registry. Every blob is checked
against its digest and every layer against its diffID; a layer the store
has is not downloaded again; the pull is journaled and an interrupted one
leaves nothing registered.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			auth, err := rf.auth(args[0])
			if err != nil {
				return err
			}
			show := newLayerProgress(cmd.ErrOrStderr(), quiet, "Downloading")
			img, err := apiclient.PullImage(cmd.Context(), c.Images, &cairnv1.ImageServicePullRequest{Ref: args[0], Platform: platform, Auth: auth}, show.update)
			show.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Pulled %s (%s)\n", familiar(img.Name), img.Id)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] of a multi-platform image (default linux and cairnd's architecture)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

func pushCmd(c *clients) *cobra.Command {
	var rf registryFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push REF",
		Short: "Push an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			auth, err := rf.auth(args[0])
			if err != nil {
				return err
			}
			show := newLayerProgress(cmd.ErrOrStderr(), quiet, "Uploading")
			d, err := apiclient.PushImage(cmd.Context(), c.Images, &cairnv1.ImageServicePushRequest{Ref: args[0], Auth: auth}, show.update)
			show.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Pushed %s: digest %s\n", args[0], d)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

// layerProgress shows a pull's or push's layers: on a terminal one line
// per layer, redrawn, with bytes and rate; otherwise one plain line at
// each layer's change of status.
type layerProgress struct {
	w        io.Writer
	tty      bool
	quiet    bool
	verb     string
	order    []string
	layers   map[string]*layerLine
	drawn    int
	lastDraw time.Time
}

type layerLine struct {
	p       *cairnv1.LayerProgress
	started time.Time
}

func newLayerProgress(w io.Writer, quiet bool, verb string) *layerProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &layerProgress{w: w, tty: tty, quiet: quiet, verb: verb, layers: map[string]*layerLine{}}
}

func (lp *layerProgress) update(p *cairnv1.LayerProgress) {
	if lp.quiet {
		return
	}
	l, ok := lp.layers[p.Digest]
	if !ok {
		l = &layerLine{}
		lp.layers[p.Digest] = l
		lp.order = append(lp.order, p.Digest)
	}
	changed := l.p == nil || l.p.Status != p.Status
	if l.started.IsZero() && p.Done > 0 {
		l.started = time.Now()
	}
	l.p = p
	if !lp.tty {
		if changed {
			fmt.Fprintln(lp.w, lp.line(l))
		}
		return
	}
	if changed || time.Since(lp.lastDraw) > 100*time.Millisecond {
		lp.draw()
	}
}

func (lp *layerProgress) draw() {
	lp.lastDraw = time.Now()
	if lp.drawn > 0 {
		fmt.Fprintf(lp.w, "\x1b[%dA", lp.drawn)
	}
	for _, d := range lp.order {
		fmt.Fprintf(lp.w, "\x1b[2K%s\n", lp.line(lp.layers[d]))
	}
	lp.drawn = len(lp.order)
}

func (lp *layerProgress) finish() {
	if lp.tty && !lp.quiet && len(lp.order) > 0 {
		lp.draw()
	}
}

var statusWords = map[string]string{
	"waiting": "Waiting", "verified": "Verified", "exists": "Already exists", "pushed": "Pushed",
	// A layer an interrupted pull had verified, not downloaded again.
	"resumed": "Resumed",
}

func (lp *layerProgress) line(l *layerLine) string {
	p := l.p
	short := strings.TrimPrefix(p.Digest, "sha256:")
	short = short[:min(12, len(short))]
	word, ok := statusWords[p.Status]
	if !ok {
		word = lp.verb
	}
	s := fmt.Sprintf("%s: %-14s", short, word)
	if p.Status == "downloading" || p.Status == "uploading" || p.Status == "verified" || p.Status == "pushed" {
		s += fmt.Sprintf(" %s/%s", units.HumanSize(float64(p.Done)), units.HumanSize(float64(p.Size)))
		if el := time.Since(l.started).Seconds(); !l.started.IsZero() && el > 0 {
			s += fmt.Sprintf("  %s/s", units.HumanSize(float64(p.Done)/el))
		}
	}
	return s
}

// outputFile opens -o's file ("-" is stdout), created next to its final
// name and renamed there only once it is whole.
func outputFile(path string, stdout io.Writer) (io.Writer, func(ok bool) error, error) {
	if path == "-" || path == "" {
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return nil, nil, errors.New("refusing to write a tar to a terminal: pass -o FILE or redirect")
		}
		return stdout, func(bool) error { return nil }, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, nil, err
	}
	done := func(ok bool) error {
		if !ok {
			tmp.Close()
			return os.Remove(tmp.Name())
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}
	return tmp, done, nil
}

func imageSaveCmd(c *clients) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [-o FILE|-] REF...",
		Short: "Save images to one tar (OCI layout + docker manifest.json)",
		Long: `Save images to one tar that is both an OCI image layout and a docker save
archive: skopeo reads it as oci-archive: and docker-archive:, docker load
and cairn image load as docker save. Configs and layer blobs are the very
bytes the images were loaded or pulled with, so their ids are kept.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, done, err := outputFile(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			err = apiclient.SaveImages(cmd.Context(), c.Images, args, w)
			return errors.Join(err, done(err == nil))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "-", "file to write, or - for stdout")
	return cmd
}

func exportCmd(c *clients) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [-o FILE|-] CONTAINER",
		Short: "Export a container's root filesystem, flattened, as a tar",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, done, err := outputFile(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			err = apiclient.ExportContainer(cmd.Context(), c.Images, args[0], w)
			return errors.Join(err, done(err == nil))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "-", "file to write, or - for stdout")
	return cmd
}

func commitCmd(c *clients) *cobra.Command {
	var changes []string
	var message, author string
	cmd := &cobra.Command{
		Use:   "commit [--change 'CMD ...']... CONTAINER [REF]",
		Short: "Make an image of a container's changes",
		Long: `Make an image of a container: its image plus one layer of what the
container changed (deletions as whiteouts), the config changed by
--change Dockerfile instructions (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR,
USER, STOPSIGNAL, EXPOSE, VOLUME). Without REF the image has no name.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := connectCommit(args, changes, message, author)
			res, err := c.Images.Commit(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Msg.Image.Id)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "a Dockerfile instruction applied to the config (repeatable)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message (the history entry's comment)")
	cmd.Flags().StringVarP(&author, "author", "a", "", "author")
	return cmd
}

func connectCommit(args, changes []string, message, author string) *connect.Request[cairnv1.ImageServiceCommitRequest] {
	req := &cairnv1.ImageServiceCommitRequest{Container: args[0], Changes: changes, Comment: message, Author: author}
	if len(args) == 2 {
		req.Ref = args[1]
	}
	return connect.NewRequest(req)
}
