#!/usr/bin/python3
"""Creates the identities the ceph s3-tests suite needs on a running Yunhai and writes its
s3tests.conf.

    s3tests_setup.py <data-dir> <conf-out>

Reads <data-dir>/endpoints.json (`api` and `s3`) and <data-dir>/credentials.json (the root
platform administrator written by `yunhai up` on first start), signs in to the REST API
(/api/v1) and creates three tenants, each with an owner user and an access key:

    s3 main    tenant s3t-main, user tester          (also [iam] and [iam root])
    s3 alt     tenant s3t-alt,  user john.doe        (also [iam alt root])
    s3 tenant  tenant testx,    user tenanteduser

Quotas of the three tenants are lifted (-1) so the suite's hundreds of buckets never hit a
limit. The canonical user id and display name the suite compares with ACL owners and grants are
read back from the S3 endpoint itself (ListBuckets' <Owner>), so the conf always agrees with what
the server reports; when ListBuckets gives no owner, the account id and user display name are used.

Only the Python standard library and boto3 (a dependency of the suite) are used.
"""

import configparser
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse

ACCOUNTS = [
    # (conf section, tenant, user, display name, email)
    ('s3 main', 's3t-main', 'tester', 'M. Tester', 'tester@example.com'),
    ('s3 alt', 's3t-alt', 'john.doe', 'john.doe', 'john.doe@example.com'),
    ('s3 tenant', 'testx', 'tenanteduser', 'testx$tenanteduser', 'tenanteduser@example.com'),
]


def fail(msg):
    sys.stderr.write('s3tests_setup: ' + msg + '\n')
    sys.exit(2)


def read_json(path, what):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail('cannot read the %s %s: %s' % (what, path, e))


class Api:
    def __init__(self, base):
        self.base = base.rstrip('/') + '/api/v1'
        self.token = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode('utf-8')
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header('content-type', 'application/json')
        if self.token:
            req.add_header('authorization', 'Bearer ' + self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            fail('%s %s answered %d: %s' % (method, path, e.code, e.read().decode('utf-8', 'replace')))


def owner_seen_by_s3(endpoint, key_id, secret):
    """The <Owner> ListBuckets reports for these keys, or None."""
    import boto3
    from botocore.client import Config

    client = boto3.client(
        's3',
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        endpoint_url=endpoint,
        region_name='us-east-1',
        config=Config(signature_version='s3v4', retries={'max_attempts': 1}),
    )
    try:
        owner = client.list_buckets().get('Owner') or {}
    except Exception as e:  # noqa: BLE001 - any failure here is reported and the fallback used
        sys.stderr.write('s3tests_setup: ListBuckets as %s failed (%s); using account ids\n' % (key_id, e))
        return None
    if not owner.get('ID'):
        return None
    return owner


def main():
    if len(sys.argv) != 3:
        fail('usage: s3tests_setup.py <data-dir> <conf-out>')
    data_dir, conf_out = sys.argv[1], sys.argv[2]
    endpoints = read_json(os.path.join(data_dir, 'endpoints.json'), 'endpoints file')
    creds = read_json(os.path.join(data_dir, 'credentials.json'), 'root credentials file')
    s3 = endpoints.get('s3')
    if not s3:
        fail('endpoints.json has no "s3" listener')

    api = Api(endpoints['api'])
    session = api.call('POST', '/auth/login', {'username': creds['username'], 'password': creds['password']})
    api.token = session['token']

    made = {}
    for section, tenant, user, display, email in ACCOUNTS:
        created = api.call(
            'POST',
            '/tenants',
            {'name': tenant, 'displayName': tenant, 'owner': {'name': user, 'email': email}},
        )
        t, owner = created['tenant'], created['owner']
        api.call('PATCH', '/users/' + owner['id'], {'displayName': display})
        quotas = api.call('GET', '/tenants/%s/quotas' % t['id'])['items']
        unlimited = {q['resource']: -1 for q in quotas if 'resource' in q}
        if unlimited:
            api.call('PUT', '/tenants/%s/quotas' % t['id'], unlimited)
        key = api.call('POST', '/users/%s/access-keys' % owner['id'])
        seen = owner_seen_by_s3(s3, key['accessKeyId'], key['secretAccessKey'])
        made[section] = {
            'tenant': tenant,
            'email': email,
            'access_key': key['accessKeyId'],
            'secret_key': key['secretAccessKey'],
            'user_id': seen['ID'] if seen else t['accountId'],
            'display_name': (seen.get('DisplayName') if seen else None) or display,
        }

    url = urlparse(s3)
    conf = configparser.RawConfigParser()
    conf['DEFAULT'] = {
        'host': url.hostname,
        'port': str(url.port or (443 if url.scheme == 'https' else 80)),
        'is_secure': 'True' if url.scheme == 'https' else 'False',
        'ssl_verify': 'False',
    }
    conf['fixtures'] = {
        'bucket prefix': 'yunhai-{random}-',
        'iam name prefix': 's3-tests-',
        'iam path prefix': '/s3-tests/',
    }
    for section in ('s3 main', 's3 alt', 's3 tenant'):
        m = made[section]
        conf[section] = {
            'display_name': m['display_name'],
            'user_id': m['user_id'],
            'email': m['email'],
            'access_key': m['access_key'],
            'secret_key': m['secret_key'],
        }
    conf['s3 main']['api_name'] = 'default'
    # SSE-KMS: Yunhai's keys are platform-managed per tenant; a key id is a label the object keeps.
    conf['s3 main']['kms_keyid'] = 'testkey-1'
    conf['s3 main']['kms_keyid2'] = 'testkey-2'
    conf['s3 tenant']['tenant'] = made['s3 tenant']['tenant']
    # test_s3.py reads these sections at import; its IAM tests are not part of the default selection.
    for section, source in (('iam', 's3 main'), ('iam root', 's3 main'), ('iam alt root', 's3 alt')):
        m = made[source]
        conf[section] = {
            'display_name': m['display_name'],
            'user_id': m['user_id'],
            'email': m['email'],
            'access_key': m['access_key'],
            'secret_key': m['secret_key'],
        }
    with open(conf_out, 'w', encoding='utf-8') as f:
        conf.write(f)
    os.chmod(conf_out, 0o600)


if __name__ == '__main__':
    main()
