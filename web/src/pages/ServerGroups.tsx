import { PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Form, Input, Modal, Popconfirm, Radio, Select, Space, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { api, type GroupPolicy, get, type Instance, type Page, type ServerGroup } from '../api';
import { CursorTable, formatTime, PageTitle, pageOf, useAction } from '../components';

export const GROUP_POLICIES: GroupPolicy[] = ['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity'];
const POLICY_COLOR: Record<GroupPolicy, string> = {
  affinity: 'blue',
  'anti-affinity': 'purple',
  'soft-affinity': 'cyan',
  'soft-anti-affinity': 'magenta',
};

export function PolicyTag({ policy }: { policy: GroupPolicy }) {
  const { t } = useTranslation();
  return <Tag color={POLICY_COLOR[policy]}>{t(`serverGroups.policies.${policy}`, { defaultValue: policy })}</Tag>;
}

/** Server groups: affinity or anti-affinity (hard or soft) placement of their member instances. */
export function ServerGroupsPage() {
  const { t } = useTranslation();
  const [creating, setCreating] = useState(false);
  const [policy, setPolicy] = useState<GroupPolicy | undefined>();
  const [form] = Form.useForm<{ name: string; hard: 'hard' | 'soft'; kind: 'affinity' | 'anti-affinity' }>();
  const instances = useQuery({ queryKey: ['instances', 'names'], queryFn: () => get<Page<Instance>>('/instances?limit=1000') });
  const names = new Map((instances.data?.items ?? []).map((i) => [i.id, i.name]));
  const create = useAction((v: { name: string; policy: GroupPolicy }) => api<ServerGroup>('POST', '/server-groups', v), {
    invalidate: [['server-groups']],
    success: t('serverGroups.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const del = useAction((id: string) => api('DELETE', `/server-groups/${encodeURIComponent(id)}`), {
    invalidate: [['server-groups']],
    success: t('common.deleted'),
  });
  return (
    <>
      <PageTitle
        title={t('nav.serverGroups')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('serverGroups.create')}
          </Button>
        }
      />
      <Typography.Paragraph type="secondary">{t('serverGroups.intro')}</Typography.Paragraph>
      <CursorTable<ServerGroup>
        queryKey={['server-groups', 'list', policy ?? '']}
        fetch={async (cursor, limit) => {
          const all = (await get<Page<ServerGroup>>('/server-groups')).items;
          return pageOf(policy ? all.filter((g) => g.policy === policy) : all, cursor, limit);
        }}
        rowKey="id"
        filterText={(g) => `${g.name} ${g.id} ${g.members.map((m) => `${m} ${names.get(m) ?? ''}`).join(' ')}`}
        emptyText={t('serverGroups.empty')}
        toolbar={
          <Select
            allowClear
            placeholder={t('serverGroups.policy')}
            aria-label={t('serverGroups.policy')}
            style={{ width: 200 }}
            value={policy}
            onChange={setPolicy}
            options={GROUP_POLICIES.map((p) => ({ value: p, label: t(`serverGroups.policies.${p}`) }))}
          />
        }
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('serverGroups.policy'), dataIndex: 'policy', render: (p: GroupPolicy) => <PolicyTag policy={p} /> },
          {
            title: t('serverGroups.members'),
            render: (_, g) =>
              g.members.length === 0 ? (
                <Typography.Text type="secondary">{t('serverGroups.noMembers')}</Typography.Text>
              ) : (
                <Space size={4} wrap>
                  {g.members.map((m) => (
                    <Link key={m} to={`/instances/${m}`}>
                      <Tag>{names.get(m) ?? m}</Tag>
                    </Link>
                  ))}
                </Space>
              ),
          },
          { title: t('common.id'), dataIndex: 'id', responsive: ['md'] },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, g) => (
              <Popconfirm
                title={t('serverGroups.confirmDelete', { name: g.name })}
                description={g.members.length ? t('serverGroups.notEmpty') : undefined}
                onConfirm={() => del.mutate(g.id)}
                okText={t('common.delete')}
                okButtonProps={{ danger: true }}
                cancelText={t('common.cancel')}
              >
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal
        open={creating}
        title={t('serverGroups.create')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('common.create')}
        cancelText={t('common.cancel')}
        confirmLoading={create.isPending}
      >
        <Form
          form={form}
          layout="vertical"
          initialValues={{ kind: 'anti-affinity', hard: 'hard' }}
          onFinish={(v) => create.mutate({ name: v.name, policy: (v.hard === 'soft' ? `soft-${v.kind}` : v.kind) as GroupPolicy })}
        >
          <Form.Item
            label={t('common.name')}
            name="name"
            rules={[
              { required: true, message: t('validation.required') },
              { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, message: t('validation.resourceName') },
            ]}
          >
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label={t('serverGroups.policy')} name="kind" extra={t('serverGroups.kindHint')}>
            <Radio.Group
              options={[
                { value: 'affinity', label: t('serverGroups.kinds.affinity') },
                { value: 'anti-affinity', label: t('serverGroups.kinds.anti-affinity') },
              ]}
            />
          </Form.Item>
          <Form.Item label={t('serverGroups.strength')} name="hard" extra={t('serverGroups.strengthHint')}>
            <Radio.Group
              options={[
                { value: 'hard', label: t('serverGroups.hard') },
                { value: 'soft', label: t('serverGroups.soft') },
              ]}
            />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
