#!/usr/bin/python3
"""Summarises a pytest JUnit XML report of the ceph s3-tests suite as Markdown.

    s3tests_summary.py <junit.xml> [title]

Prints totals (passed, failed, errors, skipped), per-area counts (areas are chosen from the test
name, first match wins, see AREAS) and the most common failure causes, grouped by the first
line of the failure message with bucket names, ids and numbers blanked out.
"""

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

# (area, substrings of the test name). Order matters: the first area whose pattern matches wins,
# so feature-specific areas come before the generic ones (an SSE-C multipart test is encryption,
# a policy test about multipart is policy).
AREAS = [
    ('object lock', ('object_lock',)),
    ('encryption', ('encrypt', 'sse_', '_sse', 'kms', '_enc', 'enc_')),
    ('lifecycle', ('lifecycle',)),
    ('policy', ('policy', 'public_block', 'block_public', 'ignore_public_acls')),
    ('cors', ('cors',)),
    ('acl', ('acl', 'access_bucket', 'grant', 'ownership', 'object_writer', 'owner_enforced', 'owner_preferred')),
    ('tagging', ('tag',)),
    ('versioning', ('versioning', 'versioned', 'delete_marker', 'version')),
    ('multipart', ('multipart', 'upload_part')),
    ('copy', ('copy',)),
    ('list', ('list', 'key_count')),
    ('post object', ('post_object',)),
    (
        'get/put/head',
        (
            'object_',
            'get_object',
            'put_object',
            'put_current',
            'ranged_request',
            'ranged_big',
            'atomic_',
            'head',
            'checksum',
            '100_continue',
        ),
    ),
    ('bucket', ('bucket',)),
]
AREA_ORDER = [a for a, _ in AREAS] + ['other']


def area_of(test_name):
    name = test_name.split('[', 1)[0]
    for area, needles in AREAS:
        if any(n in name for n in needles):
            return area
    return 'other'


NOISE = [
    (re.compile(r'yunhai-[a-z0-9]+-\d+'), '<bucket>'),
    (re.compile(r'\b[0-9a-f]{16,}\b', re.I), '<id>'),
    # Long numbers (sizes, times, ports) vary between runs; short ones (HTTP statuses) tell causes apart.
    (re.compile(r'\b\d{4,}\b'), 'N'),
    (re.compile(r"'RequestId': '[^']*'"), "'RequestId': ..."),
    (re.compile(r'\s+'), ' '),
]


def cause_of(message):
    line = (message or '').strip().split('\n', 1)[0]
    for pattern, repl in NOISE:
        line = pattern.sub(repl, line)
    return line[:200] or '(no message)'


def main():
    if len(sys.argv) < 2:
        sys.stderr.write('usage: s3tests_summary.py <junit.xml> [title]\n')
        sys.exit(2)
    title = sys.argv[2] if len(sys.argv) > 2 else 's3-tests'
    root = ET.parse(sys.argv[1]).getroot()
    # A test that fails and then errors in teardown appears twice; the first problem decides.
    RANK = {'passed': 0, 'skipped': 1, 'errors': 2, 'failed': 3}
    results = {}
    for case in root.iter('testcase'):
        name = case.get('name', '')
        outcome, message = 'passed', None
        for child in case:
            if child.tag == 'failure':
                outcome, message = 'failed', child.get('message') or child.text
            elif child.tag == 'error':
                outcome, message = 'errors', child.get('message') or child.text
            elif child.tag == 'skipped':
                outcome = 'skipped'
        key = (case.get('classname', ''), name)
        seen = results.get(key)
        if seen is None or (seen[0] in ('passed', 'skipped') and RANK[outcome] > RANK[seen[0]]):
            results[key] = (outcome, message)

    counts = defaultdict(Counter)
    causes = Counter()
    failing = defaultdict(list)
    for (_cls, name), (outcome, message) in results.items():
        area = area_of(name)
        counts[area][outcome] += 1
        counts['total'][outcome] += 1
        if outcome in ('failed', 'errors'):
            cause = cause_of(message)
            causes[cause] += 1
            failing[cause].append(name)

    total = counts['total']
    n = sum(total.values())
    ran = n - total['skipped']
    pct = (100.0 * total['passed'] / ran) if ran else 0.0
    out = []
    out.append('# %s summary' % title)
    out.append('')
    out.append(
        '**%d tests: %d passed, %d failed, %d errors, %d skipped — %.1f%% of those run pass.**'
        % (n, total['passed'], total['failed'], total['errors'], total['skipped'], pct)
    )
    out.append('')
    out.append('| area | total | passed | failed | errors | skipped | pass % |')
    out.append('|---|---:|---:|---:|---:|---:|---:|')
    for area in AREA_ORDER:
        c = counts.get(area)
        if not c:
            continue
        t = sum(c.values())
        r = t - c['skipped']
        out.append(
            '| %s | %d | %d | %d | %d | %d | %s |'
            % (area, t, c['passed'], c['failed'], c['errors'], c['skipped'], ('%.0f' % (100.0 * c['passed'] / r)) if r else '-')
        )
    if causes:
        out.append('')
        out.append('## Top failure causes')
        out.append('')
        out.append('| count | cause (first line, ids and long numbers blanked) | e.g. |')
        out.append('|---:|---|---|')
        for cause, k in causes.most_common(25):
            example = failing[cause][0]
            out.append('| %d | `%s` | %s |' % (k, cause.replace('|', '\\|').replace('`', "'"), example))
    print('\n'.join(out))


if __name__ == '__main__':
    main()
