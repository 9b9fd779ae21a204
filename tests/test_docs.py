"""README.md and docs/*.md hold together: links resolve, the README's tables are the
benchmark page's, and CI runs the test command the README opens with."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def prose(path):
    """The page's text without its fenced code blocks (a ``#`` line there is no heading)."""
    return re.sub(r'^```.*?^```', '', path.read_text(encoding='utf-8'), flags=re.M | re.S)


def anchors(path):
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces
    as hyphens."""
    headings = re.findall(r'^#+ (.*)$', prose(path), flags=re.M)
    return {re.sub(r'[^\w\- ]', '', heading.lower()).replace(' ', '-') for heading in headings}


def test_every_relative_link_of_the_readme_and_docs_points_to_a_file_and_heading():
    assert len(PAGES) > 1, 'docs/*.md not found'
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r'[a-z]+:', target):  # https:, mailto:
                continue
            name, _, anchor = target.partition('#')
            linked = (page.parent / name).resolve() if name else page
            if not linked.exists():
                broken.append(f'{page.relative_to(REPO)}: {target} (no such file)')
            elif anchor and linked.suffix == '.md' and anchor not in anchors(linked):
                broken.append(f'{page.relative_to(REPO)}: {target} (no such heading)')
    assert not broken, '\n'.join(broken)


def test_the_readme_links_every_docs_page():
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    for page in PAGES[1:]:
        assert f'](docs/{page.name})' in readme, f'README.md does not link docs/{page.name}'


def test_the_readmes_benchmark_rows_are_the_benchmark_pages():
    rows = lambda path: {line for line in path.read_text(encoding='utf-8').splitlines()
                         if line.startswith('| ')}
    readme = rows(REPO / 'README.md')
    assert readme, 'README.md shows no benchmark table'
    assert readme <= rows(REPO / 'docs' / 'benchmarks.md')


def test_ci_runs_the_test_command_the_readme_opens_with():
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    first_block = re.search(r'```bash\n(.*?)```', readme, flags=re.S).group(1)
    assert readme.index('```bash') < readme.index('\n## ')
    test_command = next(line.split('#')[0].strip() for line in first_block.splitlines()
                        if 'test' in line)
    ci = (REPO / '.ci' / 'run').read_text(encoding='utf-8').splitlines()
    assert test_command in ci
