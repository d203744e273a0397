import { FileOutlined, FolderOutlined, InboxOutlined, ShareAltOutlined } from '@ant-design/icons';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import {
  App as AntApp,
  Breadcrumb,
  Button,
  Empty,
  Input,
  Modal,
  Popconfirm,
  Progress,
  Select,
  Space,
  Switch,
  Table,
  Typography,
  Upload,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import { api, type Bucket, downloadUrl, get, type ObjectEntry, qs, uploadObject } from '../api';
import { errorText, formatBytes, formatTime, PageTitle, QueryError, useAction } from '../components';

interface Row {
  key: string;
  folder: boolean;
  entry?: ObjectEntry;
}

function ShareModal({ bucket, objectKey, onClose }: { bucket: string; objectKey: string; onClose: () => void }) {
  const { t } = useTranslation();
  const [expires, setExpires] = useState(3600);
  const [url, setUrl] = useState<string | null>(null);
  const { message } = AntApp.useApp();
  const presign = useAction(
    () => api<{ url: string; expiresAt: string }>('POST', `/buckets/${encodeURIComponent(bucket)}/presign`, { key: objectKey, expiresSeconds: expires }),
    { onSuccess: (r) => setUrl(r.url) },
  );
  return (
    <Modal open title={t('buckets.share', { key: objectKey })} onCancel={onClose} footer={<Button onClick={onClose}>{t('common.close')}</Button>}>
      <Space direction="vertical" style={{ width: '100%' }}>
        <Space wrap>
          <span>{t('buckets.expiresIn')}</span>
          <Select
            aria-label={t('buckets.expiresIn')}
            value={expires}
            onChange={setExpires}
            style={{ width: 140 }}
            options={[
              { value: 900, label: t('buckets.minutes', { n: 15 }) },
              { value: 3600, label: t('buckets.hours', { n: 1 }) },
              { value: 86400, label: t('buckets.days', { n: 1 }) },
              { value: 604800, label: t('buckets.days', { n: 7 }) },
            ]}
          />
          <Button type="primary" onClick={() => presign.mutate()} loading={presign.isPending}>
            {t('buckets.makeLink')}
          </Button>
        </Space>
        {url ? (
          <>
            <Input.TextArea readOnly value={url} autoSize className="yh-mono" data-testid="share-url" aria-label={t('buckets.link')} />
            <Button
              onClick={async () => {
                try {
                  await navigator.clipboard.writeText(url);
                  message.success(t('common.copied'));
                } catch {
                  message.info(t('common.copyManually'));
                }
              }}
            >
              {t('common.copy')}
            </Button>
          </>
        ) : null}
      </Space>
    </Modal>
  );
}

export function BucketPage() {
  const { t } = useTranslation();
  const { name = '' } = useParams();
  const [params, setParams] = useSearchParams();
  const prefix = params.get('prefix') ?? '';
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [filter, setFilter] = useState('');
  const [uploads, setUploads] = useState<{ name: string; pct: number; error?: string }[]>([]);
  const [sharing, setSharing] = useState<string | null>(null);
  const qc = useQueryClient();
  const { message } = AntApp.useApp();
  const cursor = cursors[cursors.length - 1];
  const bucket = useQuery({ queryKey: ['buckets', name], queryFn: () => get<Bucket>(`/buckets/${encodeURIComponent(name)}`) });
  const list = useQuery({
    queryKey: ['buckets', name, 'objects', prefix, cursor ?? ''],
    queryFn: () =>
      get<{ items: ObjectEntry[]; folders: string[]; nextCursor: string | null }>(
        `/buckets/${encodeURIComponent(name)}/objects${qs({ prefix, delimiter: '/', cursor, limit: 100 })}`,
      ),
  });
  const go = (p: string) => {
    setCursors([undefined]);
    setFilter('');
    setParams(p ? { prefix: p } : {});
  };
  const refresh = () => qc.invalidateQueries({ queryKey: ['buckets', name] });
  const versioning = useAction(
    (on: boolean) => api('PUT', `/buckets/${encodeURIComponent(name)}/versioning`, { status: on ? 'Enabled' : 'Suspended' }),
    { invalidate: [['buckets']], success: t('buckets.versioningChanged') },
  );
  const del = useAction((key: string) => api('DELETE', `/buckets/${encodeURIComponent(name)}/objects${qs({ key })}`), {
    invalidate: [['buckets', name]],
    success: t('common.deleted'),
  });

  const rows: Row[] = [
    ...(list.data?.folders ?? []).map((f) => ({ key: f, folder: true })),
    ...(list.data?.items ?? []).map((e) => ({ key: e.key, folder: false, entry: e })),
  ].filter((r) => !filter || r.key.slice(prefix.length).toLowerCase().includes(filter.toLowerCase()));

  const upload = (file: File) => {
    const rel = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
    const key = prefix + rel;
    setUploads((u) => [...u.filter((x) => x.name !== key), { name: key, pct: 0 }]);
    const job = uploadObject(name, key, file, (f) =>
      setUploads((u) => u.map((x) => (x.name === key ? { ...x, pct: Math.round(f * 100) } : x))),
    );
    job.promise
      .then(() => {
        setUploads((u) => u.map((x) => (x.name === key ? { ...x, pct: 100 } : x)));
        message.success(t('buckets.uploaded', { key }));
        void refresh();
      })
      .catch((e) => {
        setUploads((u) => u.map((x) => (x.name === key ? { ...x, error: errorText(e) } : x)));
        message.error(errorText(e), 6);
      });
  };

  const parts = prefix.split('/').filter(Boolean);
  return (
    <>
      <PageTitle
        title={name}
        extra={
          <Space>
            <span>{t('buckets.versioning')}</span>
            <Switch
              aria-label={t('buckets.versioning')}
              checked={bucket.data?.versioning === 'Enabled'}
              loading={versioning.isPending || bucket.isLoading}
              onChange={(on) => versioning.mutate(on)}
            />
          </Space>
        }
      />
      <QueryError error={bucket.error ?? list.error} />
      <Breadcrumb
        style={{ marginBottom: 12 }}
        items={[
          { title: <Link to="/buckets">{t('nav.buckets')}</Link> },
          { title: <a onClick={() => go('')}>{name}</a> },
          ...parts.map((p, i) => ({ title: <a onClick={() => go(parts.slice(0, i + 1).join('/') + '/')}>{p}</a> })),
        ]}
      />
      <Upload.Dragger
        className="yh-dropzone"
        multiple
        showUploadList={false}
        beforeUpload={(file) => {
          upload(file);
          return false;
        }}
        data-testid="upload"
      >
        <p className="ant-upload-drag-icon">
          <InboxOutlined />
        </p>
        <p className="ant-upload-text">{t('buckets.dropHere', { prefix: prefix || '/' })}</p>
      </Upload.Dragger>
      {uploads.length > 0 ? (
        <div style={{ marginBottom: 12 }} aria-live="polite">
          {uploads.map((u) => (
            <div key={u.name}>
              <Typography.Text>{u.name}</Typography.Text>
              <Progress percent={u.pct} status={u.error ? 'exception' : u.pct === 100 ? 'success' : 'active'} size="small" />
              {u.error ? <Typography.Text type="danger">{u.error}</Typography.Text> : null}
            </div>
          ))}
          <Button size="small" onClick={() => setUploads([])}>
            {t('buckets.clearUploads')}
          </Button>
        </div>
      ) : null}
      <Space wrap style={{ marginBottom: 12 }}>
        <Input.Search allowClear placeholder={t('common.filter')} aria-label={t('common.filter')} value={filter} onChange={(e) => setFilter(e.target.value)} style={{ width: 240 }} />
        <NewFolder onCreate={(f) => go(prefix + f.replace(/\/+$/, '') + '/')} />
        <Button onClick={() => list.refetch()} loading={list.isFetching}>
          {t('common.refresh')}
        </Button>
      </Space>
      <Table<Row>
        size="middle"
        scroll={{ x: 'max-content' }}
        loading={list.isLoading}
        dataSource={rows}
        rowKey="key"
        pagination={false}
        locale={{ emptyText: <Empty description={t('buckets.noObjects')} /> }}
        columns={[
          {
            title: t('common.name'),
            render: (_, r) =>
              r.folder ? (
                <a onClick={() => go(r.key)}>
                  <FolderOutlined /> {r.key.slice(prefix.length)}
                </a>
              ) : (
                <span>
                  <FileOutlined /> {r.key.slice(prefix.length)}
                </span>
              ),
          },
          { title: t('buckets.size'), render: (_, r) => (r.entry ? formatBytes(r.entry.size) : '') },
          { title: t('buckets.contentType'), render: (_, r) => r.entry?.contentType ?? '', responsive: ['lg'] },
          { title: t('buckets.lastModified'), render: (_, r) => (r.entry ? formatTime(r.entry.lastModified) : ''), responsive: ['md'] },
          {
            title: t('common.actions'),
            render: (_, r) =>
              r.folder ? null : (
                <Space size="small" wrap>
                  <Button size="small" href={downloadUrl(name, r.key)} download={r.key.slice(prefix.length)}>
                    {t('buckets.download')}
                  </Button>
                  <Button size="small" icon={<ShareAltOutlined />} onClick={() => setSharing(r.key)}>
                    {t('buckets.shareShort')}
                  </Button>
                  <Popconfirm title={t('buckets.confirmDeleteObject', { key: r.key })} onConfirm={() => del.mutate(r.key)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                    <Button size="small" danger>
                      {t('common.delete')}
                    </Button>
                  </Popconfirm>
                </Space>
              ),
          },
        ]}
      />
      <Space style={{ marginTop: 12 }}>
        <Button disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          {t('common.prev')}
        </Button>
        <Typography.Text type="secondary">{t('common.pageN', { n: cursors.length })}</Typography.Text>
        <Button disabled={!list.data?.nextCursor} onClick={() => setCursors((c) => [...c, list.data!.nextCursor!])}>
          {t('common.next')}
        </Button>
      </Space>
      {sharing ? <ShareModal bucket={name} objectKey={sharing} onClose={() => setSharing(null)} /> : null}
    </>
  );
}

function NewFolder({ onCreate }: { onCreate: (name: string) => void }) {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const [v, setV] = useState('');
  return (
    <>
      <Button onClick={() => setOpen(true)}>{t('buckets.newFolder')}</Button>
      <Modal
        open={open}
        title={t('buckets.newFolder')}
        onCancel={() => setOpen(false)}
        okButtonProps={{ disabled: !v.trim() || v.includes('//') }}
        okText={t('common.create')}
        cancelText={t('common.cancel')}
        onOk={() => {
          onCreate(v.trim());
          setOpen(false);
          setV('');
        }}
      >
        <Typography.Paragraph type="secondary">{t('buckets.newFolderHint')}</Typography.Paragraph>
        <Input value={v} onChange={(e) => setV(e.target.value)} aria-label={t('common.name')} autoFocus />
      </Modal>
    </>
  );
}
