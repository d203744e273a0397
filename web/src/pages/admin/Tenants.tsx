import { PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Drawer, Form, Input, InputNumber, Modal, Popconfirm, Select, Skeleton, Space, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type Page, type Quota, qs, type Tenant } from '../../api';
import { CursorTable, formatTime, PageTitle, QueryError, stateColor, UsageBar, useAction } from '../../components';

function QuotaDrawer({ tenant, onClose }: { tenant: Tenant; onClose: () => void }) {
  const { t } = useTranslation();
  const q = useQuery({ queryKey: ['tenants', tenant.id, 'quotas'], queryFn: () => get<{ items: Quota[] }>(`/tenants/${tenant.id}/quotas`) });
  const [form] = Form.useForm();
  const save = useAction((limits: Record<string, number>) => api('PUT', `/tenants/${tenant.id}/quotas`, limits), {
    invalidate: [['tenants', tenant.id, 'quotas']],
    success: t('common.saved'),
  });
  return (
    <Drawer open title={t('tenants.quotasOf', { name: tenant.name })} onClose={onClose} width={Math.min(480, window.innerWidth)}>
      <QueryError error={q.error} />
      {q.isLoading ? (
        <Skeleton active />
      ) : (
        <Form
          form={form}
          layout="vertical"
          initialValues={Object.fromEntries((q.data?.items ?? []).map((x) => [x.resource, x.limit]))}
          onFinish={(v) => save.mutate(v)}
        >
          {(q.data?.items ?? []).map((x) => (
            <Form.Item key={x.resource} label={t(`quotas.${x.resource}`)} name={x.resource} extra={<UsageBar used={x.used} limit={x.limit} resource={x.resource} label={t(`quotas.${x.resource}`)} />}>
              <InputNumber min={-1} style={{ width: '100%' }} />
            </Form.Item>
          ))}
          <Button type="primary" htmlType="submit" loading={save.isPending}>
            {t('common.save')}
          </Button>
        </Form>
      )}
    </Drawer>
  );
}

export function TenantsPage() {
  const { t } = useTranslation();
  const [status, setStatus] = useState<string | undefined>();
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [quotas, setQuotas] = useState<Tenant | null>(null);
  const [form] = Form.useForm();
  const create = useAction((body: Record<string, unknown>) => api('POST', '/tenants', body), {
    invalidate: [['tenants']],
    success: t('tenants.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const setState = useAction((v: { id: string; status: string }) => api('PATCH', `/tenants/${v.id}`, { status: v.status }), {
    invalidate: [['tenants']],
    success: t('common.saved'),
  });
  const del = useAction((id: string) => api('DELETE', `/tenants/${id}`), { invalidate: [['tenants']], success: t('common.deleted') });
  return (
    <>
      <PageTitle
        title={t('nav.tenants')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('tenants.create')}
          </Button>
        }
      />
      <CursorTable<Tenant>
        queryKey={['tenants', 'list', status ?? '', search]}
        fetch={(cursor, limit) => get<Page<Tenant>>(`/tenants${qs({ cursor, limit, status, search })}`)}
        rowKey="id"
        toolbar={
          <>
            <Input.Search allowClear placeholder={t('common.search')} aria-label={t('common.search')} onSearch={setSearch} style={{ width: 200 }} />
            <Select allowClear placeholder={t('tenants.status')} aria-label={t('tenants.status')} value={status} onChange={setStatus} style={{ width: 140 }} options={['active', 'suspended'].map((s) => ({ value: s, label: t(`states.${s}`) }))} />
          </>
        }
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('tenants.displayName'), dataIndex: 'displayName', responsive: ['md'] },
          { title: t('tenants.accountId'), dataIndex: 'accountId', responsive: ['lg'] },
          { title: t('tenants.status'), dataIndex: 'status', render: (s: string) => <Tag color={stateColor[s]}>{t(`states.${s}`)}</Tag> },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, x) => (
              <Space size="small" wrap>
                <Button size="small" onClick={() => setQuotas(x)}>
                  {t('tenants.quotas')}
                </Button>
                {x.status === 'active' ? (
                  <Popconfirm title={t('tenants.confirmSuspend', { name: x.name })} onConfirm={() => setState.mutate({ id: x.id, status: 'suspended' })} okText={t('tenants.suspend')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                    <Button size="small">{t('tenants.suspend')}</Button>
                  </Popconfirm>
                ) : (
                  <Button size="small" onClick={() => setState.mutate({ id: x.id, status: 'active' })}>
                    {t('tenants.resume')}
                  </Button>
                )}
                <Popconfirm title={t('tenants.confirmDelete', { name: x.name })} onConfirm={() => del.mutate(x.id)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                  <Button size="small" danger>
                    {t('common.delete')}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <Modal open={creating} title={t('tenants.create')} onCancel={() => setCreating(false)} onOk={() => form.submit()} okText={t('common.create')} cancelText={t('common.cancel')} confirmLoading={create.isPending}>
        <Form
          form={form}
          layout="vertical"
          onFinish={(v) =>
            create.mutate({
              name: v.name,
              ...(v.displayName ? { displayName: v.displayName } : {}),
              ...(v.ownerName ? { owner: { name: v.ownerName, ...(v.ownerPassword ? { password: v.ownerPassword } : {}) } } : {}),
            })
          }
        >
          <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[a-z0-9][a-z0-9-]{1,62}$/, message: t('validation.resourceName') }]}>
            <Input />
          </Form.Item>
          <Form.Item label={t('tenants.displayName')} name="displayName">
            <Input />
          </Form.Item>
          <Form.Item label={t('tenants.ownerName')} name="ownerName">
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label={t('tenants.ownerPassword')} name="ownerPassword" rules={[{ min: 8, message: t('validation.minChars', { n: 8 }) }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
        </Form>
      </Modal>
      {quotas ? <QuotaDrawer tenant={quotas} onClose={() => setQuotas(null)} /> : null}
    </>
  );
}
