import { PlusOutlined } from '@ant-design/icons';
import { Button, Form, Input, Modal, Popconfirm, Select, Space, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { type Aggregate, api, get, type Host, type Page } from '../../api';
import { CursorTable, PageTitle, useAction } from '../../components';
import { useQuery } from '@tanstack/react-query';

/** `k=v` lines to a metadata object. */
const parseMeta = (text: string) =>
  Object.fromEntries(
    text
      .split(/\n|,/)
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
  );

/** Host aggregates: metadata the scheduler matches (flavor extra specs, tenant isolation), their hosts. */
export function AggregatesPage() {
  const { t } = useTranslation();
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm();
  const hosts = useQuery({ queryKey: ['hosts', 'names'], queryFn: () => get<Page<Host>>('/hosts') });
  const create = useAction((v: { name: string; metadata?: string }) => api('POST', '/aggregates', { name: v.name, metadata: parseMeta(v.metadata ?? '') }), {
    invalidate: [['aggregates']],
    success: t('aggregates.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const addHost = useAction((v: { agg: string; host: string }) => api('POST', `/aggregates/${v.agg}/hosts`, { host: v.host }), {
    invalidate: [['aggregates'], ['hosts']],
    success: t('common.saved'),
  });
  const removeHost = useAction((v: { agg: string; host: string }) => api('DELETE', `/aggregates/${v.agg}/hosts/${v.host}`), {
    invalidate: [['aggregates'], ['hosts']],
    success: t('common.saved'),
  });
  const del = useAction((name: string) => api('DELETE', `/aggregates/${name}`), { invalidate: [['aggregates']], success: t('common.deleted') });
  return (
    <>
      <PageTitle
        title={t('nav.aggregates')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('aggregates.create')}
          </Button>
        }
      />
      <CursorTable<Aggregate>
        queryKey={['aggregates']}
        fetch={() => get<Page<Aggregate>>('/aggregates')}
        rowKey="id"
        filterText={(a) => `${a.name} ${a.hosts.join(' ')} ${Object.entries(a.metadata).flat().join(' ')}`}
        emptyText={t('aggregates.empty')}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          {
            title: t('aggregates.metadata'),
            render: (_, a) => (
              <Space size={4} wrap>
                {Object.entries(a.metadata).map(([k, v]) => (
                  <Tag key={k} color={k === 'filter_tenant_id' ? 'purple' : 'blue'}>
                    {k}={v}
                  </Tag>
                ))}
              </Space>
            ),
          },
          {
            title: t('nav.hosts'),
            render: (_, a) => (
              <Space size={4} wrap>
                {a.hosts.map((h) => (
                  <Tag key={h} closable onClose={(e) => {
                    e.preventDefault();
                    removeHost.mutate({ agg: a.name, host: h });
                  }}>
                    {h}
                  </Tag>
                ))}
                <Select
                  size="small"
                  style={{ width: 140 }}
                  placeholder={t('aggregates.addHost')}
                  aria-label={t('aggregates.addHost')}
                  value={null}
                  onChange={(host: string) => addHost.mutate({ agg: a.name, host })}
                  options={(hosts.data?.items ?? []).filter((h) => !a.hosts.includes(h.name)).map((h) => ({ value: h.name, label: h.name }))}
                />
              </Space>
            ),
          },
          {
            title: t('common.actions'),
            render: (_, a) => (
              <Popconfirm title={t('aggregates.confirmDelete', { name: a.name })} onConfirm={() => del.mutate(a.name)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal open={creating} title={t('aggregates.create')} onCancel={() => setCreating(false)} onOk={() => form.submit()} okText={t('common.create')} cancelText={t('common.cancel')} confirmLoading={create.isPending}>
        <Form form={form} layout="vertical" onFinish={(v) => create.mutate(v)}>
          <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, message: t('validation.resourceName') }]}>
            <Input />
          </Form.Item>
          <Form.Item label={t('aggregates.metadata')} name="metadata" extra={t('aggregates.metadataHint')}>
            <Input.TextArea rows={3} placeholder={'ssd=true\nfilter_tenant_id=ten-…'} />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
