"""The web page of `sockit serve --http ADDR`, in a real browser: Debian's
headless Chromium driven by selenium. Only the keyboard is used to log in,
join, talk, upload (once selenium has put the path in the file input) and
download. SOCKIT_SCREENSHOT=PATH saves a screenshot of the page."""

import hashlib
import os
import queue
import shutil
import subprocess
import threading
import time

import pytest

import ws_proto
from conftest import SOCKIT_BIN, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromium-driver are needed")




@pytest.fixture
def wsrv(start_server, key_file, tmp_path):
    root = tmp_path / "root"
    srv = start_server("--key-file", key_file, "--root", str(root), "--http", "127.0.0.1:0")
    srv.root = root
    srv.http = ws_proto.http_addr(srv, wait_for)
    return srv


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1100,900",
              "--ignore-certificate-errors",  # the https test's self-signed certificate
              "--user-data-dir=%s" % (tmp_path / "chromium-profile")):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                           options=opts)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": str(downloads)})
    drv.downloads = downloads
    yield drv
    drv.quit()


def key_text(key_file):
    with open(key_file) as f:
        return f.read()


def text_of(drv, id_):
    return drv.find_element(By.ID, id_).text


def wait_text(drv, id_, needle, timeout=15):
    ok = wait_for(lambda: needle in text_of(drv, id_), timeout=timeout)
    assert ok, "%r not in #%s: %r (status %r)" % (needle, id_, text_of(drv, id_),
                                                 text_of(drv, "status"))


def log_in(drv, srv, key, scheme="http"):
    """With the keyboard only: the key field has the focus; type, Enter."""
    drv.get("%s://%s/" % (scheme, srv.http))
    assert wait_for(lambda: drv.switch_to.active_element.get_attribute("id") == "key")
    drv.switch_to.active_element.send_keys(key.strip() + Keys.ENTER)


def tab_to(drv, what, css, limit=30):
    """Press Tab until the element matching css has the focus (the keyboard's
    way to a control: it must be in the tab order), then return it."""
    want = drv.find_element(By.CSS_SELECTOR, css)
    for _ in range(limit):
        if drv.switch_to.active_element == want:
            return want
        ActionChains(drv).send_keys(Keys.TAB).perform()  # a key press, whatever has the focus
    raise AssertionError("%s cannot be reached with Tab" % what)


def join(drv, room, nick):
    assert wait_for(lambda: drv.switch_to.active_element.get_attribute("id") == "room",
                    timeout=15), text_of(drv, "status")
    el = drv.switch_to.active_element
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(room + Keys.TAB)
    el = drv.switch_to.active_element
    assert el.get_attribute("id") == "nick"
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(nick + Keys.ENTER)
    assert wait_for(lambda: drv.switch_to.active_element.get_attribute("id") == "text",
                    timeout=10), text_of(drv, "status")


class ChatCli:
    """`sockit chat` with piped stdin/stdout (each line said, each message printed)."""

    def __init__(self, env, addr, key_file, room, nick):
        self.proc = subprocess.Popen(
            [SOCKIT_BIN, "chat", addr, "--room", room, "--nick", nick, "--key-file", key_file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env.make(), text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def say(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait_line(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if needle in line:
                return line
        raise AssertionError("%r not printed by sockit chat: %r" % (needle, seen))

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_page_chats_with_sockit_chat(wsrv, browser, key_file, env):
    """History on joining, presence both ways, and messages both ways."""
    early = ChatCli(env, wsrv.addr, key_file, "web", "early")
    cli = None
    try:
        early.say("said before the page came <b>x</b>\u202e!")
        early.wait_line("early: said before the page came")  # it is in the room's history
        log_in(browser, wsrv, key_text(key_file))
        join(browser, "web", "browser")
        # history, shown as text: no markup made of it, the bidi override escaped
        wait_text(browser, "log", "early: said before the page came <b>x</b>\\u{202e}!")
        assert browser.find_elements(By.CSS_SELECTOR, "#log b") == []
        wait_text(browser, "members", "early")  # the members joined announced
        cli = ChatCli(env, wsrv.addr, key_file, "web", "terminal")
        wait_text(browser, "members", "terminal")  # presence: a join
        wait_text(browser, "log", "terminal joined")
        early.stop()
        assert wait_for(lambda: "early" not in text_of(browser, "members"))  # presence: a leave
        wait_text(browser, "log", "early left")
        browser.switch_to.active_element.send_keys("hello from the page" + Keys.ENTER)
        cli.wait_line("browser: hello from the page")
        cli.say("hello from the terminal")
        wait_text(browser, "log", "terminal: hello from the terminal")
        wait_text(browser, "log", "browser: hello from the page")
        members = text_of(browser, "members").split("\n")
        assert sorted(members) == ["browser", "terminal"]
        shot = os.environ.get("SOCKIT_SCREENSHOT")
        if shot:  # the README's picture: a file in the list, the whole page in view
            wsrv.root.mkdir(exist_ok=True)
            (wsrv.root / "notes.txt").write_text("a file in the server's root\n")
            browser.set_window_size(1100, 1150)
            browser.find_element(By.ID, "refresh").click()
            wait_text(browser, "entries", "notes.txt")
            browser.save_screenshot(shot)
    finally:
        early.stop()
        if cli is not None:
            cli.stop()


def test_page_upload_lands_in_the_root(wsrv, browser, key_file, tmp_path):
    src = tmp_path / "from-browser.bin"
    data = os.urandom((3 << 20) + 12345)
    src.write_bytes(data)
    log_in(browser, wsrv, key_text(key_file))
    wait_text(browser, "status", "Connected")
    # a file input takes its path from selenium (no dialog headless); the rest is keys
    browser.find_element(By.ID, "file").send_keys(str(src))
    tab_to(browser, "the upload button", "#upload")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_text(browser, "files-status", "Uploaded from-browser.bin", timeout=60)
    want = "sha256:" + hashlib.sha256(data).hexdigest()
    assert want in text_of(browser, "files-status")
    assert (wsrv.root / "from-browser.bin").read_bytes() == data
    assert browser.find_element(By.ID, "progress").get_attribute("value") == "1"
    wait_text(browser, "entries", "from-browser.bin")
    # a small file goes whole in the put's message
    small = tmp_path / "small.txt"
    small.write_bytes(b"x" * 1000)
    browser.find_element(By.ID, "file").send_keys(str(small))
    tab_to(browser, "the upload button", "#upload")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_text(browser, "files-status", "Uploaded small.txt: 1000 bytes, sha256:" +
              hashlib.sha256(b"x" * 1000).hexdigest())
    assert (wsrv.root / "small.txt").read_bytes() == b"x" * 1000


def test_page_downloads_a_put_file_byte_exact(wsrv, browser, key_file, tmp_path, run_cli):
    src = tmp_path / "put-by-cli.bin"
    data = os.urandom((2 << 20) + 777)
    src.write_bytes(data)
    r = run_cli("put", wsrv.addr, str(src), "--key-file", key_file, timeout=60)
    assert r.returncode == 0, r.stderr
    log_in(browser, wsrv, key_text(key_file))
    wait_text(browser, "entries", "put-by-cli.bin")
    tab_to(browser, "the file's download button", "button[data-name='put-by-cli.bin']")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_text(browser, "files-status", "verified", timeout=60)
    assert "sha256:" + hashlib.sha256(data).hexdigest() in text_of(browser, "files-status")
    got = browser.downloads / "put-by-cli.bin"
    assert wait_for(lambda: got.exists() and got.stat().st_size == len(data), timeout=30), \
        list(browser.downloads.iterdir())
    assert got.read_bytes() == data


def test_page_wrong_key_says_so(wsrv, browser):
    log_in(browser, wsrv, "not-the-key-0123456789abcdef")
    wait_text(browser, "login-error", "Wrong key")
    assert browser.find_element(By.ID, "login-error").is_displayed()
    assert browser.find_element(By.ID, "app").is_displayed() is False
    assert browser.execute_script("return sessionStorage.getItem('sockit.key')") is None


# Every control's accessible name (a label, aria-label or its text), and the
# live regions that announce what happens.
UNNAMED_CONTROLS = """
return [...document.querySelectorAll("input, button, progress, select, textarea")]
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute("aria-label") ||
                    el.textContent.trim()))
  .map((el) => el.id || el.outerHTML);
"""


def test_page_keeps_the_key_for_the_session(wsrv, browser, key_file):
    log_in(browser, wsrv, key_text(key_file))
    wait_text(browser, "status", "Connected")
    # accessible: every control has a name, the status lines are live regions
    assert browser.execute_script(UNNAMED_CONTROLS) == []
    for id_ in ("status", "files-status", "log"):
        assert browser.find_element(By.ID, id_).get_attribute("aria-live") == "polite", id_
    assert browser.find_element(By.ID, "login-error").get_attribute("role") == "alert"
    assert browser.execute_script("return document.documentElement.lang") == "en"
    browser.refresh()  # no prompt again: the key is in sessionStorage
    wait_text(browser, "status", "Connected")
    assert browser.find_element(By.ID, "login").is_displayed() is False


def test_page_off_loopback_over_http_explains_why_it_cannot_work(start_server, key_file, browser):
    import test_http
    ip = test_http.non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address here")
    srv = start_server("--key-file", key_file, "--http", "0.0.0.0:0")
    port = ws_proto.http_addr(srv, wait_for).rsplit(":", 1)[1]
    browser.get("http://%s:%s/" % (ip, port))
    wait_text(browser, "login-error", "needs a secure context")
    assert browser.find_element(By.ID, "connect").get_attribute("disabled") == "true"


def test_page_over_https_in_certificate_mode(start_server, key_file, browser, tmp_path):
    cert, key = ws_proto.self_signed_cert(str(tmp_path))
    root = tmp_path / "root"
    srv = start_server("--key-file", key_file, "--root", str(root), "--http", "127.0.0.1:0",
                       "--tls-cert", cert, "--tls-key", key)
    srv.http = ws_proto.http_addr(srv, wait_for)
    log_in(browser, srv, key_text(key_file), scheme="https")
    wait_text(browser, "status", "Connected")
    assert browser.execute_script("return location.protocol") == "https:"
    src = tmp_path / "secure.bin"
    data = os.urandom((1 << 20) + 3)
    src.write_bytes(data)
    browser.find_element(By.ID, "file").send_keys(str(src))
    browser.find_element(By.ID, "upload").click()
    wait_text(browser, "files-status", "Uploaded secure.bin", timeout=60)
    assert (root / "secure.bin").read_bytes() == data
    wait_text(browser, "entries", "secure.bin")  # the list refreshes after the upload
    browser.find_element(By.CSS_SELECTOR, "button[data-name='secure.bin']").click()
    wait_text(browser, "files-status", "verified", timeout=60)
    got = browser.downloads / "secure.bin"
    assert wait_for(lambda: got.exists() and got.stat().st_size == len(data), timeout=30)
    assert got.read_bytes() == data
