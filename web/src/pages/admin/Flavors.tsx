import { PlusOutlined } from '@ant-design/icons';
import { Button, Form, Input, InputNumber, Modal, Popconfirm, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, type Flavor, get, type Page } from '../../api';
import { CursorTable, PageTitle, useAction } from '../../components';

export function FlavorsPage() {
  const { t } = useTranslation();
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm();
  const create = useAction((body: Record<string, unknown>) => api('POST', '/flavors', body), {
    invalidate: [['flavors']],
    success: t('flavors.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const del = useAction((id: string) => api('DELETE', `/flavors/${id}`), { invalidate: [['flavors']], success: t('common.deleted') });
  return (
    <>
      <PageTitle
        title={t('nav.flavors')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('flavors.create')}
          </Button>
        }
      />
      <CursorTable<Flavor>
        queryKey={['flavors']}
        fetch={() => get<Page<Flavor>>('/flavors?limit=1000')}
        rowKey="id"
        filterText={(f) => f.name}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('instances.vcpus'), dataIndex: 'vcpus' },
          { title: t('instances.memoryMiB'), dataIndex: 'memoryMiB' },
          { title: t('flavors.diskGiB'), dataIndex: 'diskGiB' },
          { title: t('flavors.max'), render: (_, f) => `${f.maxVcpus} vCPU / ${f.maxMemoryMiB} MiB`, responsive: ['md'] },
          { title: t('images.visibility'), render: (_, f) => (f.public ? <Tag color="blue">{t('images.public')}</Tag> : <Tag>{f.tenantId}</Tag>) },
          {
            title: t('common.actions'),
            render: (_, f) => (
              <Popconfirm title={t('flavors.confirmDelete', { name: f.name })} onConfirm={() => del.mutate(f.id)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal open={creating} title={t('flavors.create')} onCancel={() => setCreating(false)} onOk={() => form.submit()} okText={t('common.create')} cancelText={t('common.cancel')} confirmLoading={create.isPending}>
        <Form
          form={form}
          layout="vertical"
          initialValues={{ vcpus: 1, memoryMiB: 512, diskGiB: 1 }}
          onFinish={(v) =>
            create.mutate({
              name: v.name,
              vcpus: v.vcpus,
              memoryMiB: v.memoryMiB,
              diskGiB: v.diskGiB,
              ...(v.maxVcpus ? { maxVcpus: v.maxVcpus } : {}),
              ...(v.maxMemoryMiB ? { maxMemoryMiB: v.maxMemoryMiB } : {}),
              ...(v.tenantId ? { tenantId: v.tenantId } : {}),
            })
          }
        >
          <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[a-z0-9][a-z0-9._-]{0,62}$/, message: t('validation.resourceName') }]}>
            <Input />
          </Form.Item>
          <Form.Item label={t('instances.vcpus')} name="vcpus" rules={[{ required: true }]}>
            <InputNumber min={1} max={256} />
          </Form.Item>
          <Form.Item label={t('instances.memoryMiB')} name="memoryMiB" rules={[{ required: true }]}>
            <InputNumber min={64} step={128} />
          </Form.Item>
          <Form.Item label={t('flavors.diskGiB')} name="diskGiB" rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
          <Form.Item label={t('flavors.maxVcpus')} name="maxVcpus">
            <InputNumber min={1} max={256} />
          </Form.Item>
          <Form.Item label={t('flavors.maxMemoryMiB')} name="maxMemoryMiB">
            <InputNumber min={64} step={128} />
          </Form.Item>
          <Form.Item label={t('flavors.tenantId')} name="tenantId" extra={t('flavors.tenantHint')}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
