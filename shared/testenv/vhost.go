package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// vhostAdmin creates and deletes virtual hosts, through the management
// HTTP API when it answers (milliseconds) and rabbitmqctl otherwise (about
// a second per call).
type vhostAdmin struct {
	once sync.Once
	api  string // management API base URL, "" when not usable
}

var mgmt = &vhostAdmin{}

// managementURL is the management API; PHOTOPIPE_TEST_RABBITMQ_API overrides.
var managementURL = envOr("PHOTOPIPE_TEST_RABBITMQ_API", "http://guest:guest@127.0.0.1:15672/api")

func (a *vhostAdmin) init() {
	a.once.Do(func() {
		if a.ping() {
			a.api = managementURL
			return
		}
		// Try to enable the plugin once; it is what operators use anyway.
		if _, err := rabbitmqctlBin("rabbitmq-plugins", "enable", "rabbitmq_management"); err != nil {
			return
		}
		for range 40 {
			if a.ping() {
				a.api = managementURL
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}

func (a *vhostAdmin) ping() bool {
	code, err := a.do(http.MethodGet, managementURL+"/overview", "")
	return err == nil && code == http.StatusOK
}

func (a *vhostAdmin) do(method, rawURL, body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (a *vhostAdmin) createVhost(vhost, user string) error {
	a.init()
	if a.api == "" {
		if out, err := rabbitmqctl("add_vhost", vhost); err != nil {
			return fmt.Errorf("rabbitmqctl add_vhost: %w: %s", err, out)
		}
		if out, err := rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"); err != nil {
			return fmt.Errorf("rabbitmqctl set_permissions: %w: %s", err, out)
		}
		return nil
	}
	v := url.PathEscape(vhost)
	if code, err := a.do(http.MethodPut, a.api+"/vhosts/"+v, ""); err != nil || code/100 != 2 {
		return fmt.Errorf("PUT vhost: status %d: %v", code, err)
	}
	perms := `{"configure":".*","write":".*","read":".*"}`
	if code, err := a.do(http.MethodPut, a.api+"/permissions/"+v+"/"+url.PathEscape(user), perms); err != nil || code/100 != 2 {
		return fmt.Errorf("PUT permissions: status %d: %v", code, err)
	}
	return nil
}

func (a *vhostAdmin) deleteVhost(vhost string) error {
	a.init()
	if a.api == "" {
		if out, err := rabbitmqctl("delete_vhost", vhost); err != nil {
			return fmt.Errorf("rabbitmqctl delete_vhost: %w: %s", err, out)
		}
		return nil
	}
	code, err := a.do(http.MethodDelete, a.api+"/vhosts/"+url.PathEscape(vhost), "")
	if err != nil || (code/100 != 2 && code != http.StatusNotFound) {
		return fmt.Errorf("DELETE vhost: status %d: %v", code, err)
	}
	return nil
}
