"""The Airflow UI in headless Chromium (Debian's chromium and chromium-driver) driven by Selenium: log in,
screenshot a DAG's grid, open its trigger form and screenshot that, add a connection through its form, and use the
run report's tab: read it in either theme, follow its links, download its lists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed
# network refuses; --no-sandbox because the tests may run as root.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
    "--force-device-scale-factor=1",
)
WAIT_SECONDS = 60
# an accordion group has finished opening (its height animates up to its content's; until then the fields below the
# animated height are clipped, so neither in its text nor in a screenshot)
_FULLY_OPEN = (
    "const c = arguments[0]; return c.getBoundingClientRect().height >= c.scrollHeight - 1 && "
    "!c.getAnimations({subtree: true}).length;"
)


class AirflowUi:
    """A Chromium session on the Airflow UI.

    :param base_url: the api-server's root URL (it serves the UI).
    :param profile: an empty folder for Chromium's profile (removed at the end).
    """

    def __init__(self, base_url: str, profile: Path):
        self.base_url, self.profile = base_url.rstrip("/"), profile
        self.downloads = profile.parent / f"{profile.name}-downloads"

    def __enter__(self) -> AirflowUi:
        os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium: no usage statistics sent anywhere
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.path.exists(path):
                raise FileNotFoundError(
                    f"{path} is missing: install Debian's chromium and chromium-driver packages "
                    "(scripts/setup.sh --system does)"
                )
        shutil.rmtree(self.profile, ignore_errors=True)
        shutil.rmtree(self.downloads, ignore_errors=True)
        self.downloads.mkdir(parents=True)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        prefs = {"download.default_directory": str(self.downloads), "download.prompt_for_download": False}
        options.add_experimental_option("prefs", prefs)
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        self.driver.set_page_load_timeout(WAIT_SECONDS)
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
        shutil.rmtree(self.downloads, ignore_errors=True)

    def _wait(self, condition, what: str):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.25).until(condition)
        except TimeoutException as error:
            self.driver.save_screenshot(str(self.profile.parent / "timeout.png"))
            raise AssertionError(
                f"the UI did not show {what} within {WAIT_SECONDS} s (screenshot: timeout.png); "
                f"page text: {self._text()[:500]!r}"
            ) from error

    def _text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def log_in(self, username: str, password: str) -> None:
        """Sign in through the auth manager's login form (FAB's, or SimpleAuthManager's)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{self.base_url}/auth/login/")
        self._wait(ec.element_to_be_clickable((By.NAME, "username")), "the login form").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        self._wait(lambda d: "/auth/login" not in d.current_url, "the page after signing in")

    def choose_theme(self, theme: str) -> None:
        """Choose the UI's theme ("light" or "dark") as its Appearance menu stores it (next-themes' ``theme`` key in
        the UI's local storage), for the pages opened from now on."""
        self.driver.switch_to.default_content()
        self.driver.execute_script("window.localStorage.setItem('theme', arguments[0]);", theme)

    def switch_theme_live(self, theme: str) -> None:
        """Switch the open UI's theme through its own menu: User > Appearance > Light Mode or Dark Mode."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        label = {"light": "Light Mode", "dark": "Dark Mode"}[theme]
        self.driver.switch_to.default_content()
        user = (By.XPATH, "//nav//button[normalize-space()='User'] | //button[@aria-label='User']")
        self._wait(ec.element_to_be_clickable(user), "the User menu").click()
        appearance = (By.XPATH, "//*[starts-with(@role, 'menuitem')][normalize-space()='Appearance']")
        self._wait(ec.element_to_be_clickable(appearance), "the Appearance menu").click()
        choice = (By.XPATH, f"//*[starts-with(@role, 'menuitem')][normalize-space()='{label}']")
        self._wait(ec.element_to_be_clickable(choice), f"the {label} item").click()
        self._wait(
            lambda d: d.execute_script("return document.documentElement.classList.contains(arguments[0])", theme),
            f"the UI in its {theme} theme",
        )

    def dag_grid(self, dag_id: str, screenshot: Path, run_ids: list[str]) -> Path:
        """Open the DAG's page, wait until its grid links to each of ``run_ids``, and save a screenshot."""
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.base_url}/dags/{dag_id}")

        def shows_every_run(driver) -> bool:
            links = {a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, "a[href*='/runs/']")}
            return all(any(f"/runs/{run_id}" in link for link in links) for run_id in run_ids)

        self._wait(shows_every_run, f"the runs {run_ids} in the grid of {dag_id}")
        return self._screenshot(screenshot)

    def trigger_from_form(self, dag_id: str, screenshot: Path, values: dict[str, str], run_id: str) -> str:
        """Open the DAG's trigger form, screenshot it, fill ``values`` and the run id, and press Trigger.

        :param dag_id: the DAG.
        :param screenshot: where the screenshot of the whole form goes.
        :param values: param name -> text typed into its field (one line per item for arrays).
        :param run_id: typed into Advanced Options' run id field.
        :return: the form's text before it was filled.
        """
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{self.base_url}/dags/{dag_id}")
        opener = (By.XPATH, "//button[normalize-space()='Trigger']")
        self._wait(ec.element_to_be_clickable(opener), "the Trigger button").click()
        dialog_locator = (By.XPATH, "//*[@role='dialog'][.//*[starts-with(normalize-space(), 'Trigger Dag')]]")
        dialog = self._wait(ec.visibility_of_element_located(dialog_locator), "the trigger form")
        self._wait(lambda d: dialog.find_elements(By.NAME, "element_r_script"), "the params in the trigger form")
        text = dialog.text
        # a window as tall as the form, so that the screenshot shows every param
        self.driver.set_window_size(1600, dialog.size["height"] + 200)
        self._screenshot(screenshot)
        self.driver.set_window_size(1600, 1000)

        for name, value in values.items():
            self._type(dialog.find_element(By.NAME, f"element_{name}"), value)
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Advanced Options']").click()
        self._type(self._wait(ec.element_to_be_clickable((By.NAME, "dagRunId")), "the run id field"), run_id)
        submit = (By.XPATH, "//*[@role='dialog']//button[@type='submit' or normalize-space()='Trigger']")
        self._wait(ec.element_to_be_clickable(submit), "an enabled Trigger button in the form").click()
        self._wait(ec.invisibility_of_element_located(dialog_locator), "the trigger form to close")
        return text

    def add_connection(self, conn_id: str, type_label: str, fields: dict[str, str], screenshot: Path) -> str:
        """Admin > Connections > Add Connection: choose the connection type, screenshot its standard fields
        (``<screenshot stem>-standard.png``) and its extra fields (``screenshot``), fill ``fields`` and save.

        :param conn_id: the new connection's id.
        :param type_label: the connection type as the type list shows it (its hook name).
        :param fields: an extra field's name -> text typed into it.
        :param screenshot: where the screenshot of the form with its extra fields open goes.
        :return: the form's text, with each group open in turn, before it was filled.
        """
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{self.base_url}/connections")
        opener = (By.XPATH, "//button[normalize-space()='Add Connection']")
        self._wait(ec.element_to_be_clickable(opener), "the Add Connection button").click()
        dialog_locator = (By.XPATH, "//*[@role='dialog'][.//*[normalize-space()='Add Connection']]")
        dialog = self._wait(ec.visibility_of_element_located(dialog_locator), "the connection form")
        self._wait(ec.element_to_be_clickable((By.NAME, "connection_id")), "the connection id field").send_keys(conn_id)
        dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]").send_keys(type_label)
        option = (By.XPATH, f"//*[@role='option'][normalize-space()='{type_label}']")
        self._wait(ec.element_to_be_clickable(option), f"{type_label!r} in the connection types").click()
        texts = []
        standard = screenshot.with_name(f"{screenshot.stem}-standard.png")
        # the two groups open one at a time: the standard fields first, then the connection type's own
        for group, shows, path in (
            ("Standard Fields", "login", standard),
            ("Extra Fields", f"element_{next(iter(fields))}", screenshot),
        ):
            toggle = (By.XPATH, f"//*[@role='dialog']//button[normalize-space()='{group}']")
            button = self._wait(ec.element_to_be_clickable(toggle), f"the {group} group")
            if button.get_attribute("aria-expanded") != "true":
                button.click()
            self._wait(ec.element_to_be_clickable((By.NAME, shows)), f"the fields of {group}")
            content = self.driver.find_element(By.ID, button.get_attribute("aria-controls"))
            self._wait(lambda d, c=content: d.execute_script(_FULLY_OPEN, c), f"the {group} group to finish opening")
            texts.append(dialog.text)
            self.driver.set_window_size(1600, dialog.size["height"] + 200)
            self._screenshot(path)
            self.driver.set_window_size(1600, 1000)
        for name, value in fields.items():
            self._type(self._wait(ec.element_to_be_clickable((By.NAME, f"element_{name}")), f"the field {name}"), value)
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Save']").click()
        self._wait(ec.invisibility_of_element_located(dialog_locator), "the connection form to close")
        return "\n".join(texts)

    def open_run_report(
        self, dag_id: str, run_id: str, screenshot: Path | None = None, *, failed_files: bool = True
    ) -> dict:
        """Open the DAG run's "Run report" tab and wait inside its frame until the report has loaded (and, with
        ``failed_files``, lists them); save a screenshot of the UI with the tab open. Returns what the page shows.

        :param dag_id: the DAG.
        :param run_id: the DAG run.
        :param screenshot: where the screenshot goes (None: none).
        :param failed_files: whether to wait for the failed files' table.
        """
        from urllib.parse import quote

        self.driver.switch_to.default_content()
        self.driver.get(
            f"{self.base_url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/plugin/azureml-parallel-r-report"
        )
        return self.read_run_report(run_id, screenshot, failed_files=failed_files)

    def read_run_report(self, run_id: str, screenshot: Path | None = None, *, failed_files: bool = True) -> dict:
        """What the open "Run report" tab shows once its report of ``run_id`` has loaded (see :meth:`open_run_report`):
        its text, the failed files' names as the table shows them, how many images the frame has, the rerun button
        (shown, disabled, the reason given), the frame's theme and page colour, and the UI's address."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        frame = (By.CSS_SELECTOR, "iframe[title='Run report']")
        self._wait(ec.frame_to_be_available_and_switch_to_it(frame), "the Run report tab's frame")

        def loaded(driver) -> bool:
            title = driver.find_element(By.ID, "title").text
            return run_id in title and not driver.find_element(By.ID, "loading").is_displayed()

        self._wait(loaded, f"the report of {run_id} in the frame")
        if failed_files:
            rows = (By.CSS_SELECTOR, "#failures tbody tr")
            self._wait(lambda d: d.find_elements(*rows), "the failed files in the report")
        button = self.driver.find_element(By.ID, "rerun")
        shown = {
            "text": self._text(),
            "failed_files": [
                td.text for td in self.driver.find_elements(By.CSS_SELECTOR, "#failures tbody td:first-child")
            ],
            "images": self.driver.execute_script("return document.images.length"),
            # the failed files' names may wrap after each path separator, and nowhere else (report.js)
            "path_breaks": len(self.driver.find_elements(By.CSS_SELECTOR, "#failures tbody td:first-child wbr")),
            "rerun_button": button.is_displayed(),
            "rerun_disabled": not button.is_enabled(),
            "rerun_reason": self.driver.find_element(By.ID, "rerun-reason").text,
            "theme": self.driver.execute_script("return document.documentElement.dataset.theme"),
            "background": self.driver.execute_script("return getComputedStyle(document.body).backgroundColor"),
        }
        self.driver.switch_to.default_content()
        shown["url"] = self.driver.current_url
        if screenshot is not None:
            self.driver.set_window_size(1600, 1500)
            self._screenshot(screenshot)
            self.driver.set_window_size(1600, 1000)
        return shown

    def press_extra_link(self, dag_id: str, run_id: str, task_id: str, name: str) -> None:
        """Open a task instance's page and press one of its extra-link buttons."""
        from urllib.parse import quote

        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        self.driver.get(f"{self.base_url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}")
        button = (By.XPATH, f"//a[normalize-space()='{name}']")
        self._wait(ec.element_to_be_clickable(button), f"the {name!r} button of {task_id}").click()

    def filter_failures(self, text: str) -> str:
        """In the open report, type ``text`` into the failed files' filter; return what the page says once no row
        matches (its "no match" line)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        frame = (By.CSS_SELECTOR, "iframe[title='Run report']")
        self._wait(ec.frame_to_be_available_and_switch_to_it(frame), "the Run report tab's frame")
        self._type(self.driver.find_element(By.ID, "filter-text"), text)
        said = self._wait(
            lambda d: (line := d.find_element(By.ID, "no-match")).is_displayed() and line.text,
            "the filter's no-match line",
        )
        self.driver.switch_to.default_content()
        return said

    def report_theme(self, theme: str) -> str:
        """Wait until the open report's frame shows ``theme``; return its page colour."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        frame = (By.CSS_SELECTOR, "iframe[title='Run report']")
        self._wait(ec.frame_to_be_available_and_switch_to_it(frame), "the Run report tab's frame")
        self._wait(
            lambda d: d.execute_script("return document.documentElement.dataset.theme") == theme,
            f"the report in the {theme} theme",
        )
        background = self.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        self.driver.switch_to.default_content()
        return background

    def follow_report_link(self, run_id: str) -> dict:
        """In the open report, click the link to ``run_id``'s report; wait until the UI shows that run's tab and
        return what it shows (:meth:`read_run_report`)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        frame = (By.CSS_SELECTOR, "iframe[title='Run report']")
        self._wait(ec.frame_to_be_available_and_switch_to_it(frame), "the Run report tab's frame")
        link = self._wait(ec.element_to_be_clickable((By.LINK_TEXT, run_id)), f"the link to {run_id}")
        link.click()
        self.driver.switch_to.default_content()
        from urllib.parse import quote

        route = f"/runs/{quote(run_id, safe='')}/plugin/azureml-parallel-r-report"
        self._wait(lambda d: d.current_url.endswith(route), f"the UI's address of {run_id}'s report")
        return self.read_run_report(run_id, failed_files=False)

    def download(self, link_id: str) -> Path:
        """In the open report, click a download link and wait for the file; return it."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.switch_to.default_content()
        frame = (By.CSS_SELECTOR, "iframe[title='Run report']")
        self._wait(ec.frame_to_be_available_and_switch_to_it(frame), "the Run report tab's frame")
        before = set(self.downloads.iterdir())
        self.driver.find_element(By.ID, link_id).click()
        self.driver.switch_to.default_content()

        def downloaded(_driver) -> Path | None:
            new = [p for p in set(self.downloads.iterdir()) - before if not p.name.endswith(".crdownload")]
            return new[0] if new else None

        return self._wait(downloaded, f"the download of {link_id}")

    def rerun_failed_files(self) -> str:
        """In the open run report, press "Rerun failed files" and return what the page answers."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self._wait(
            ec.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, "iframe[title='Run report']")),
            "the Run report tab's frame",
        )
        self.driver.find_element(By.ID, "rerun").click()
        answer = self._wait(
            lambda d: (t := d.find_element(By.ID, "rerun-result").text) and t != "Triggering…" and t,
            "the answer to the rerun button",
        )
        self.driver.switch_to.default_content()
        return answer

    def alert_text(self) -> str | None:
        """The text of an open JavaScript alert, or None (a page that runs a smuggled script would open one)."""
        from selenium.common.exceptions import NoAlertPresentException

        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    @staticmethod
    def _type(field, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)

    def _screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"Chromium could not save a screenshot to {path}")
        return path
