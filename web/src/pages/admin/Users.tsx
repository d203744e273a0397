import { PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Form, Input, Modal, Popconfirm, Select, Space, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type Page, qs, type Role, type Tenant, type User } from '../../api';
import { CursorTable, formatTime, PageTitle, useAction } from '../../components';

const ROLES: Role[] = ['platform-admin', 'owner', 'member', 'readonly'];

export function UsersPage() {
  const { t } = useTranslation();
  const [tenantId, setTenantId] = useState<string | undefined>();
  const [role, setRole] = useState<Role | undefined>();
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [resetting, setResetting] = useState<User | null>(null);
  const [form] = Form.useForm();
  const [pwForm] = Form.useForm();
  const tenants = useQuery({ queryKey: ['tenants', 'all'], queryFn: () => get<Page<Tenant>>('/tenants?limit=1000') });
  const tenantName = (id: string) => tenants.data?.items.find((x) => x.id === id)?.name ?? id;
  const create = useAction((body: Record<string, unknown>) => api('POST', '/users', body), {
    invalidate: [['users']],
    success: t('users.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const changeRole = useAction((v: { id: string; role: Role }) => api('PATCH', `/users/${v.id}`, { role: v.role }), {
    invalidate: [['users']],
    success: t('common.saved'),
  });
  const setPw = useAction((v: { id: string; password: string }) => api('PUT', `/users/${v.id}/password`, { password: v.password }), {
    success: t('account.passwordChanged'),
    onSuccess: () => {
      setResetting(null);
      pwForm.resetFields();
    },
  });
  const del = useAction((id: string) => api('DELETE', `/users/${id}`), { invalidate: [['users']], success: t('common.deleted') });
  const tenantOptions = (tenants.data?.items ?? []).map((x) => ({ value: x.id, label: x.name }));
  return (
    <>
      <PageTitle
        title={t('nav.users')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('users.create')}
          </Button>
        }
      />
      <CursorTable<User>
        queryKey={['users', 'list', tenantId ?? '', role ?? '', search]}
        fetch={(cursor, limit) => get<Page<User>>(`/users${qs({ cursor, limit, tenantId, role, search })}`)}
        rowKey="id"
        toolbar={
          <>
            <Input.Search allowClear placeholder={t('common.search')} aria-label={t('common.search')} onSearch={setSearch} style={{ width: 180 }} />
            <Select allowClear showSearch optionFilterProp="label" placeholder={t('auth.tenant')} aria-label={t('auth.tenant')} value={tenantId} onChange={setTenantId} style={{ width: 160 }} options={tenantOptions} />
            <Select allowClear placeholder={t('users.role')} aria-label={t('users.role')} value={role} onChange={setRole} style={{ width: 150 }} options={ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))} />
          </>
        }
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('auth.tenant'), dataIndex: 'tenantId', render: tenantName },
          {
            title: t('users.role'),
            render: (_, u) => (
              <Select
                size="small"
                value={u.role}
                aria-label={t('users.role')}
                style={{ width: 150 }}
                onChange={(r: Role) => changeRole.mutate({ id: u.id, role: r })}
                options={ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))}
              />
            ),
          },
          { title: t('users.email'), dataIndex: 'email', responsive: ['lg'] },
          { title: t('users.lastLogin'), dataIndex: 'lastLoginAt', render: formatTime, responsive: ['md'] },
          { title: t('users.password'), dataIndex: 'hasPassword', render: (v: boolean) => (v ? <Tag color="green">{t('common.yes')}</Tag> : <Tag>{t('common.no')}</Tag>), responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, u) => (
              <Space size="small" wrap>
                <Button size="small" onClick={() => setResetting(u)}>
                  {t('users.setPassword')}
                </Button>
                <Popconfirm title={t('users.confirmDelete', { name: u.name })} onConfirm={() => del.mutate(u.id)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                  <Button size="small" danger>
                    {t('common.delete')}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <Modal open={creating} title={t('users.create')} onCancel={() => setCreating(false)} onOk={() => form.submit()} okText={t('common.create')} cancelText={t('common.cancel')} confirmLoading={create.isPending}>
        <Form
          form={form}
          layout="vertical"
          initialValues={{ role: 'member' }}
          onFinish={(v) =>
            create.mutate({
              name: v.name,
              role: v.role,
              ...(v.tenantId ? { tenantId: v.tenantId } : {}),
              ...(v.email ? { email: v.email } : {}),
              ...(v.password ? { password: v.password } : {}),
            })
          }
        >
          <Form.Item label={t('auth.tenant')} name="tenantId" rules={[{ required: true, message: t('validation.required') }]}>
            <Select showSearch optionFilterProp="label" options={tenantOptions} />
          </Form.Item>
          <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }]}>
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label={t('users.role')} name="role">
            <Select options={ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))} />
          </Form.Item>
          <Form.Item label={t('users.email')} name="email" rules={[{ type: 'email', message: t('validation.email') }]}>
            <Input />
          </Form.Item>
          <Form.Item label={t('users.password')} name="password" rules={[{ min: 8, message: t('validation.minChars', { n: 8 }) }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
        </Form>
      </Modal>
      <Modal open={!!resetting} title={t('users.setPasswordFor', { name: resetting?.name ?? '' })} onCancel={() => setResetting(null)} onOk={() => pwForm.submit()} okText={t('common.save')} cancelText={t('common.cancel')} confirmLoading={setPw.isPending}>
        <Form form={pwForm} layout="vertical" onFinish={(v) => resetting && setPw.mutate({ id: resetting.id, password: v.password })}>
          <Form.Item label={t('account.newPassword')} name="password" rules={[{ required: true, message: t('validation.required') }, { min: 8, message: t('validation.minChars', { n: 8 }) }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
