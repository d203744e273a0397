import { ImportOutlined } from '@ant-design/icons';
import { Button, Form, Input, Modal, Popconfirm, Select, Tag, Tooltip } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type Image, type Page, qs } from '../api';
import { useAuth } from '../auth';
import { CursorTable, formatBytes, formatTime, PageTitle, stateColor, useAction } from '../components';

export function ImportImageModal({ onClose, publicDefault }: { onClose: () => void; publicDefault?: boolean }) {
  const { t } = useTranslation();
  const { isAdmin } = useAuth();
  const [form] = Form.useForm();
  const imp = useAction((body: Record<string, unknown>) => api('POST', '/images', body), {
    invalidate: [['images']],
    success: t('images.importStarted'),
    onSuccess: onClose,
  });
  return (
    <Modal open title={t('images.import')} onCancel={onClose} onOk={() => form.submit()} okText={t('images.import')} cancelText={t('common.cancel')} confirmLoading={imp.isPending}>
      <Form
        form={form}
        layout="vertical"
        initialValues={{ format: 'qcow2', visibility: publicDefault ? 'public' : 'private', osType: 'linux' }}
        onFinish={(v) =>
          imp.mutate({
            name: v.name,
            format: v.format,
            visibility: v.visibility,
            osType: v.osType,
            ...(v.osDistro ? { osDistro: v.osDistro } : {}),
            source: { disk: v.source },
            ...(v.sha256 ? { sha256: v.sha256 } : {}),
          })
        }
      >
        <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, message: t('validation.resourceName') }]}>
          <Input />
        </Form.Item>
        <Form.Item label={t('images.source')} name="source" extra={t('images.sourceHint')} rules={[{ required: true, message: t('validation.required') }]}>
          <Input placeholder="https://…/disk.qcow2" />
        </Form.Item>
        <Form.Item label={t('images.format')} name="format">
          <Select options={['qcow2', 'raw', 'iso'].map((f) => ({ value: f, label: f }))} />
        </Form.Item>
        <Form.Item label={t('images.osType')} name="osType">
          <Select options={['linux', 'windows', 'bsd', 'other'].map((f) => ({ value: f, label: f }))} />
        </Form.Item>
        <Form.Item label={t('images.osDistro')} name="osDistro">
          <Input placeholder="debian" />
        </Form.Item>
        <Form.Item label={t('images.visibility')} name="visibility">
          <Select
            options={[
              { value: 'private', label: t('images.private') },
              { value: 'public', label: t('images.public'), disabled: !isAdmin },
            ]}
          />
        </Form.Item>
        <Form.Item label="SHA-256" name="sha256" rules={[{ pattern: /^[0-9a-fA-F]{64}$/, message: t('validation.sha256') }]}>
          <Input className="yh-mono" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

export function ImageTable({ visibility }: { visibility?: 'public' | 'private' }) {
  const { t } = useTranslation();
  const { isAdmin, me } = useAuth();
  const [status, setStatus] = useState<string | undefined>();
  const del = useAction((id: string) => api('DELETE', `/images/${id}`), { invalidate: [['images']], success: t('common.deleted') });
  return (
    <CursorTable<Image>
      queryKey={['images', 'list', visibility ?? '', status ?? '']}
      fetch={(cursor, limit) => get<Page<Image>>(`/images${qs({ cursor, limit, visibility, status })}`)}
      refetchInterval={5000}
      rowKey="id"
      filterText={(i) => `${i.name} ${i.id} ${i.osDistro}`}
      emptyText={t('images.empty')}
      toolbar={
        <Select
          allowClear
          placeholder={t('images.status')}
          aria-label={t('images.status')}
          style={{ width: 150 }}
          value={status}
          onChange={setStatus}
          options={['available', 'importing', 'error'].map((s) => ({ value: s, label: t(`states.${s}`) }))}
        />
      }
      columns={[
        { title: t('common.name'), dataIndex: 'name' },
        {
          title: t('images.status'),
          dataIndex: 'status',
          render: (s: string, i) => (
            <Tooltip title={i.error}>
              <Tag color={stateColor[s]}>{t(`states.${s}`)}</Tag>
            </Tooltip>
          ),
        },
        { title: t('images.visibility'), dataIndex: 'visibility', render: (v: string) => t(`images.${v}`) },
        { title: t('images.format'), dataIndex: 'format', responsive: ['md'] },
        { title: t('images.osDistro'), dataIndex: 'osDistro', responsive: ['md'] },
        { title: t('images.size'), dataIndex: 'sizeBytes', render: formatBytes },
        { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
        {
          title: t('common.actions'),
          render: (_, i) =>
            i.tenantId === me?.tenant.id || isAdmin ? (
              <Popconfirm title={t('images.confirmDelete', { name: i.name })} onConfirm={() => del.mutate(i.id)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ) : null,
        },
      ]}
    />
  );
}

export function ImagesPage() {
  const { t } = useTranslation();
  const { isAdmin } = useAuth();
  const [importing, setImporting] = useState(false);
  const buildTiny = useAction(
    () => api<{ status: 'ready' | 'building'; imageId: string | null }>('POST', '/images/tiny'),
    {
      invalidate: [['images']],
      success: (r) => (r.status === 'ready' ? t('images.tinyReady') : t('images.tinyBuilding')),
    },
  );
  return (
    <>
      <PageTitle
        title={t('nav.images')}
        extra={
          <>
            {isAdmin ? (
              <Button onClick={() => buildTiny.mutate(undefined)} loading={buildTiny.isPending}>
                {t('images.buildTiny')}
              </Button>
            ) : null}
            <Button type="primary" icon={<ImportOutlined />} onClick={() => setImporting(true)}>
              {t('images.import')}
            </Button>
          </>
        }
      />
      <ImageTable />
      {importing ? <ImportImageModal onClose={() => setImporting(false)} /> : null}
    </>
  );
}
